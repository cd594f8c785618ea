// Flex Consumption runs blob triggers from Event Grid: a system topic on the storage account and one
// subscription per upload container, delivering BlobCreated events to that container's function.
param location string
param storageName string
param appName string
param containers array

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: '${storageName}-events'
  location: location
  properties: {
    source: account.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
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
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${container}/'
      subjectEndsWith: '.csv'
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}]
