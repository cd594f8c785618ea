// Flex Consumption runs blob triggers from Event Grid: per upload container one WEBHOOK subscription on
// the data account's system topic, delivering BlobCreated events of uploads to that container's function.
// Deployed once the app code is published (the blobs_extension key exists only then). Events it cannot
// deliver are dead-lettered (never dropped); the reconcile sweep also finds every upload through the
// journal subscriptions (eventgrid.bicep), so a webhook failure delays an upload, never loses it.
param topicName string
param storageName string
param appName string
param containers array
param deadLetterContainer string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

// The blobs_extension system key exists once the app code (with its blob triggers) is published.
var blobsKey = listKeys('${app.id}/host/default', '2024-04-01').systemKeys.blobs_extension

resource subscriptions 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = [for container in containers: {
  parent: topic
  name: 'ingest-${container}'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${app.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.ingest_${replace(container, '-', '_')}&code=${blobsKey}'
      }
    }
    // Every upload, never the reports the app writes itself (_reports/). No '.csv' suffix filter: a
    // wrongly named file gets a report saying why it was refused, not silence.
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${container}/blobs/'
      advancedFilters: [
        {
          operatorType: 'StringNotBeginsWith'
          key: 'subject'
          values: [
            '/blobServices/default/containers/${container}/blobs/_reports/'
          ]
        }
      ]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: account.id
          blobContainerName: deadLetterContainer
        }
      }
    }
  }
}]
