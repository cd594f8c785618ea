// Autopilot Registrar: everything the Function App needs, with managed identity and least privilege.
// Deploy: az deployment group create -g <rg> -f infra/main.bicep -p infra/main.bicepparam
targetScope = 'resourceGroup'

@description('Azure region for all resources (must offer the Flex Consumption plan).')
param location string = resourceGroup().location

@description('Short lower-case prefix for resource names (3-11 letters or digits).')
@minLength(3)
@maxLength(11)
param namePrefix string

@description('The profiles document (infra/profiles.json; the app reads the same text as REGISTRAR_PROFILES): profiles with group tag and Entra group id, and each partner\'s allowed profiles. The ONE list of partners: their containers and Event Grid subscriptions are derived from it.')
param profilesJson string

@description('Service Bus queue of device registrations.')
param queueName string = 'device-registrations'

@description('Deliveries before a registration message is dead-lettered.')
@minValue(1)
@maxValue(100)
param maxDeliveryCount int = 5

@description('Message lock duration (ISO 8601); longer than one batch of Graph imports takes.')
param lockDuration string = 'PT5M'

@description('Duplicate detection window (ISO 8601): a second send of the same attempt within it is dropped; every new attempt has a new message id.')
param duplicateDetectionWindow string = 'PT1H'

@description('Reconcile timer schedule (NCRONTAB with seconds).')
param reconcileSchedule string = '0 */5 * * * *'

@description('Graph writes per window shared by all instances: Intune 100 per 20 s per app, Entra 3,000 per 150 s per app.')
param graphWriteBudget string = 'intune=100/20,entra=3000/150'

@description('Largest accepted upload, in bytes.')
param maxUploadBytes int = 536870912

@description('Maximum Function App instances (Flex Consumption).')
param maximumInstanceCount int = 40

@description('Create the Event Grid subscriptions that feed the blob triggers. Needs the app code published first (the blobs_extension key exists only then): deploy once with false, publish, deploy again with true.')
param deployEventSubscriptions bool = false

var suffix = uniqueString(resourceGroup().id, namePrefix)
// Two accounts: the host's own (AzureWebJobsStorage: keys, deployment package, host queues), which no
// partner can reach, and the data account (uploads, reports, state, upload-event journal, dead letters).
var hostStorageName = take('${namePrefix}hs${suffix}', 24)
var storageName = take('${namePrefix}st${suffix}', 24)
var appName = '${namePrefix}-func-${suffix}'
// Partners come from the profiles document only (shared/config.py validates the same document at start-up
// and function_app.py indexes one ingest function per partner from it): tests/unit/test_infra_partners.py.
var profiles = json(profilesJson)
var partnerContainers = [for partner in items(contains(profiles, 'partners') ? profiles.partners : {}): 'partner-${partner.key}']
var uploadContainers = concat(['device-uploads'], partnerContainers)
// Every BlobCreated event is also journaled here (Event Grid -> storage queue); the reconcile sweep drains it.
var uploadEventsQueue = 'upload-events'
// Events Event Grid could not deliver (either subscription) land here; the reconcile sweep drains it too.
var deadLetterContainer = 'upload-events-deadletter'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    namePrefix: namePrefix
    suffix: suffix
  }
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    location: location
    name: '${namePrefix}-id-${suffix}'
  }
}

module hostStorage 'modules/hoststorage.bicep' = {
  name: 'hoststorage'
  params: {
    location: location
    storageName: hostStorageName
    deploymentContainer: 'app-package'
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    storageName: storageName
    uploadContainers: uploadContainers
    deadLetterContainer: deadLetterContainer
    uploadEventsQueue: uploadEventsQueue
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    location: location
    namespaceName: '${namePrefix}-sb-${suffix}'
    queueName: queueName
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    duplicateDetectionWindow: duplicateDetectionWindow
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.outputs.principalId
    hostStorageName: hostStorage.outputs.storageName
    storageName: storage.outputs.storageName
    namespaceName: serviceBus.outputs.namespaceName
    queueName: queueName
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    appName: appName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    hostBlobServiceUri: hostStorage.outputs.blobEndpoint
    hostQueueServiceUri: hostStorage.outputs.queueEndpoint
    hostTableServiceUri: hostStorage.outputs.tableEndpoint
    blobServiceUri: storage.outputs.blobEndpoint
    queueServiceUri: storage.outputs.queueEndpoint
    tableServiceUri: storage.outputs.tableEndpoint
    deploymentContainerUrl: '${hostStorage.outputs.blobEndpoint}app-package'
    serviceBusNamespaceFqdn: serviceBus.outputs.fqdn
    appInsightsConnectionString: monitoring.outputs.connectionString
    profilesJson: profilesJson
    queueName: queueName
    reconcileSchedule: reconcileSchedule
    maxUploadBytes: maxUploadBytes
    maximumInstanceCount: maximumInstanceCount
    lockDuration: lockDuration
    duplicateDetectionWindow: duplicateDetectionWindow
    maxDeliveryCount: maxDeliveryCount
    graphWriteBudget: graphWriteBudget
    uploadEventsQueue: uploadEventsQueue
    deadLetterContainer: deadLetterContainer
  }
  dependsOn: [
    roles
  ]
}

// The admin portal: Easy Auth (Entra ID) and CORS for its uploads (modules/portal.bicep).
@description('Application (client) id of the portal\'s Entra app registration; empty: portal sign-in not configured.')
param portalClientId string = ''

@description('Entra groups allowed to sign in to the portal (admin group, partners\' groups).')
param portalAllowedGroups array = []

module portal 'modules/portal.bicep' = {
  name: 'portal'
  params: {
    appName: functionApp.outputs.name
    storageName: storage.outputs.storageName
    portalClientId: portalClientId
    portalAllowedGroups: portalAllowedGroups
  }
}

// The journal subscriptions (storage queue) need nothing from the app: deployed from the first run, so an
// upload made before the app is published is swept once it is.
module events 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  params: {
    location: location
    storageName: storage.outputs.storageName
    containers: uploadContainers
    uploadEventsQueue: uploadEventsQueue
    deadLetterContainer: deadLetterContainer
  }
}

module webhooks 'modules/eventgrid-webhooks.bicep' = if (deployEventSubscriptions) {
  name: 'eventgrid-webhooks'
  params: {
    topicName: events.outputs.topicName
    storageName: storage.outputs.storageName
    appName: functionApp.outputs.name
    containers: uploadContainers
    deadLetterContainer: deadLetterContainer
  }
}

output functionAppName string = functionApp.outputs.name
output managedIdentityPrincipalId string = identity.outputs.principalId
output uploadContainerUrls array = [for c in uploadContainers: '${storage.outputs.blobEndpoint}${c}']
output queueName string = queueName
output storageAccountName string = storage.outputs.storageName
output hostStorageAccountName string = hostStorage.outputs.storageName
output eventGridTopicName string = events.outputs.topicName
