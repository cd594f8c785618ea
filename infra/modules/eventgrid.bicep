// Event Grid on the DATA account: a system topic (with its own identity) and, per upload container, a
// JOURNAL subscription that writes every BlobCreated event of an upload into the storage queue
// `uploadEventsQueue`. The reconcile timer's sweep (shared/sweep.py) drains that queue and ingests any
// upload without a finished record, so an event the blob trigger never ran (FunctionNotFound, a host that
// was down, a dead-lettered webhook delivery) still gets its upload processed. Undeliverable events of
// both subscriptions are dead-lettered to `deadLetterContainer`, which the sweep drains as well.
// The webhook subscriptions that feed the blob triggers are in eventgrid-webhooks.bicep (they need the
// published app's blobs_extension key).
param location string
param storageName string
param containers array
param uploadEventsQueue string
param deadLetterContainer string

// Built-in roles for the topic's identity, each at the narrowest scope: send messages to the journal
// queue only, write dead-letter blobs to the dead-letter container only.
var storageQueueDataMessageSender = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource blobServices 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource deadLetters 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobServices
  name: deadLetterContainer
}

resource queueServices 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource journal 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueServices
  name: uploadEventsQueue
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: '${storageName}-events'
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: account.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource journalSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(journal.id, topic.id, storageQueueDataMessageSender)
  scope: journal
  properties: {
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSender)
  }
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetters.id, topic.id, storageBlobDataContributor)
  scope: deadLetters
  properties: {
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
  }
}

resource journalSubscriptions 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = [for container in containers: {
  parent: topic
  name: 'journal-${container}'
  properties: {
    deliveryWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: account.id
          queueName: uploadEventsQueue
          queueMessageTimeToLiveInSeconds: -1 // kept until the sweep deletes it
        }
      }
    }
    // The same filter as the webhook subscriptions: every upload, never the app's own _reports/.
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
  dependsOn: [
    journalSender
    deadLetterWriter
  ]
}]

output topicName string = topic.name
