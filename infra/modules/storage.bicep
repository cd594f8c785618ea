// The DATA account (the app's DataStorage connection): upload containers, reports, state tables, the
// upload-event journal queue and the Event Grid dead-letter container. Partners reach only their own
// container, with a user-delegation SAS. The Functions host's own storage is another account
// (hoststorage.bicep). Shared keys are disabled: the app uses its identity.
param location string
param storageName string
param uploadContainers array
@description('Event Grid dead-letters undeliverable upload events here; the reconcile sweep drains it.')
param deadLetterContainer string
@description('Storage queue journaling every upload event (second Event Grid subscription); the sweep drains it.')
param uploadEventsQueue string
param logAnalyticsWorkspaceId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: partners upload from their own networks with a user-delegation SAS and the Flex app runs without VNet integration; shared keys are disabled and every request is authenticated
  // checkov:skip=CKV_AZURE_59: same reason: public endpoint needed for partner uploads; anonymous blob access is off (allowBlobPublicAccess false)
  // checkov:skip=CKV_AZURE_43: the name is computed (prefix + uniqueString, cut to 24 lower-case characters), which checkov cannot evaluate
  name: storageName
  location: location
  sku: {
    name: 'Standard_GRS'
  }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled' // partners upload from the internet with a SAS; see infra/README.md
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: 14
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 14
    }
  }
}

resource deadLetters 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: deadLetterContainer
  properties: {
    publicAccess: 'None'
  }
}

resource upload 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for name in uploadContainers: {
  parent: blobs
  name: name
  properties: {
    publicAccess: 'None'
  }
}]

resource tables 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource stateTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for name in ['registrardevices', 'registraruploads', 'registrarrows']: {
  parent: tables
  name: name
}]

resource queues 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource journal 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queues
  name: uploadEventsQueue
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2016-09-01' = {
  name: 'blob-audit'
  scope: blobs
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2016-09-01' = {
  name: 'queue-audit'
  scope: queues
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

output storageName string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
output deadLetterContainerName string = deadLetters.name
output uploadEventsQueueName string = journal.name
