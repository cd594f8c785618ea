// Least privilege for the app's identity, with built-in role definition ids, per account:
// - host storage (AzureWebJobsStorage): blobs (keys, deployment package), queues (the blob trigger's host
//   queue), tables (the host's diagnostic events), as the Functions docs list for AzureWebJobsStorage;
// - data storage (DataStorage): blobs (uploads, reports; the blob trigger reads them; user-delegation keys
//   for the portal's upload SAS), queues (the blob trigger's poison queue, the upload-event journal),
//   tables (state);
// - Service Bus, on the one queue only: Data Receiver (trigger), Data Sender (register's own sends) and
//   Data Owner, which the trigger's target-based scaler needs to read the queue length (Manage);
// - Monitoring Metrics Publisher on Application Insights (Entra-authenticated telemetry).
// Partners hold no role anywhere: they get a user-delegation SAS on their own container only.
param principalId string
param hostStorageName string
param storageName string
param namespaceName string
param queueName string
param appInsightsName string

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var serviceBusDataReceiver = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
var serviceBusDataSender = '69a216fc-b8fb-44d8-bc22-1f3c2552a45b'
var serviceBusDataOwner = '090c5cfd-751d-490a-894a-3ce6f1109419'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource hostAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageName
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: namespaceName
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: namespace
  name: queueName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource hostStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [storageBlobDataOwner, storageQueueDataContributor, storageTableDataContributor]: {
  name: guid(hostAccount.id, principalId, role)
  scope: hostAccount
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]

resource dataStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [storageBlobDataOwner, storageQueueDataContributor, storageTableDataContributor]: {
  name: guid(account.id, principalId, role)
  scope: account
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]

resource queueRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [serviceBusDataReceiver, serviceBusDataSender, serviceBusDataOwner]: {
  name: guid(queue.id, principalId, role)
  scope: queue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]

resource telemetryRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
  }
}
