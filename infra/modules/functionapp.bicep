// The Function App on the Flex Consumption plan (Python 3.11), running as the user-assigned identity.
// Every connection is identity-based: no storage or Service Bus key appears in any setting.
param location string
param appName string
param identityId string
param identityClientId string
@description('The HOST storage account\'s endpoints (AzureWebJobsStorage: keys, deployment package, host queues); read by the Functions host only.')
param hostBlobServiceUri string
param hostQueueServiceUri string
param hostTableServiceUri string
@description('The DATA storage account\'s endpoints (DataStorage: uploads, reports, state, journal); the blob trigger\'s connection, the SDK-type binding and the app read them.')
param blobServiceUri string
param queueServiceUri string
param tableServiceUri string
param deploymentContainerUrl string
param serviceBusNamespaceFqdn string
@secure()
param appInsightsConnectionString string
param profilesJson string
param queueName string
param reconcileSchedule string
param maxUploadBytes int
param maximumInstanceCount int
@description('The queue\'s own lock duration and duplicate-detection window: register budgets its batches by them.')
param lockDuration string
param duplicateDetectionWindow string
@description('The queue\'s maxDeliveryCount: the app reads it from SERVICEBUS_MAX_DELIVERY_COUNT (one source).')
param maxDeliveryCount int
@description('The upload-event journal queue and the Event Grid dead-letter container (data account).')
param uploadEventsQueue string
param deadLetterContainer string
@description('Graph write budgets shared by every instance, per resource family (writes/seconds).')
param graphWriteBudget string

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption depends on the region; the work is queued and retried, so a zone outage delays registrations without losing them
  name: '${appName}-plan'
  location: location
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Event Grid delivers blob events to the app's public webhook, and admins call the status API; both require a key
  // checkov:skip=CKV_AZURE_17: Event Grid webhooks cannot present client certificates; function keys protect the endpoints
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero; queued work survives instance loss, so always-ready instances would only add cost
  // checkov:skip=CKV_AZURE_213: the Flex Consumption plan does not support the App Service health check; Application Insights monitors the app
  name: appName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        { name: 'AzureWebJobsStorage__blobServiceUri', value: hostBlobServiceUri }
        { name: 'AzureWebJobsStorage__queueServiceUri', value: hostQueueServiceUri }
        { name: 'AzureWebJobsStorage__tableServiceUri', value: hostTableServiceUri }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'DataStorage__blobServiceUri', value: blobServiceUri }
        { name: 'DataStorage__queueServiceUri', value: queueServiceUri }
        { name: 'DataStorage__tableServiceUri', value: tableServiceUri }
        { name: 'DataStorage__credential', value: 'managedidentity' }
        { name: 'DataStorage__clientId', value: identityClientId }
        { name: 'ServiceBusConnection__fullyQualifiedNamespace', value: serviceBusNamespaceFqdn }
        { name: 'ServiceBusConnection__credential', value: 'managedidentity' }
        { name: 'ServiceBusConnection__clientId', value: identityClientId }
        { name: 'AZURE_CLIENT_ID', value: identityClientId }
        { name: 'AZURE_TENANT_ID', value: tenant().tenantId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD;ClientId=${identityClientId}' }
        { name: 'REGISTRAR_PROFILES', value: profilesJson }
        { name: 'REGISTRATION_QUEUE', value: queueName }
        { name: 'GRAPH_BASE_URL', value: 'https://graph.microsoft.com/v1.0' }
        { name: 'GRAPH_CREDENTIAL', value: 'managed-identity' }
        { name: 'STATE_TABLE_PREFIX', value: 'registrar' }
        { name: 'RECONCILE_SCHEDULE', value: reconcileSchedule }
        { name: 'MAX_UPLOAD_BYTES', value: string(maxUploadBytes) }
        { name: 'SERVICEBUS_LOCK_DURATION', value: lockDuration }
        { name: 'SERVICEBUS_DUPLICATE_WINDOW', value: duplicateDetectionWindow }
        { name: 'REGISTRATION_MAX_ATTEMPTS', value: '5' }
        { name: 'RECONCILE_CLEANUP_SECONDS', value: '240' } // until about a minute before the next 5-minute run: import records cleared at the budget's pace, 20 % of it left to registration
        { name: 'FLEET_CHECK_SECONDS', value: '1800' } // full drift check every 30 minutes; new devices settle every run
        { name: 'GRAPH_WRITE_BUDGET', value: graphWriteBudget }
        { name: 'SERVICEBUS_MAX_DELIVERY_COUNT', value: string(maxDeliveryCount) }
        { name: 'UPLOAD_EVENTS_QUEUE', value: uploadEventsQueue }
        { name: 'UPLOAD_DEADLETTER_CONTAINER', value: deadLetterContainer }
      ]
    }
  }
}

output name string = app.name
output hostName string = app.properties.defaultHostName
