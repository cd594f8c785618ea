// Autopilot Registrar: everything the Function App needs, with managed identity and least privilege.
// Deploy: az deployment group create -g <rg> -f infra/main.bicep -p infra/main.bicepparam
targetScope = 'resourceGroup'

@description('Azure region for all resources (must offer the Flex Consumption plan).')
param location string = resourceGroup().location

@description('Short lower-case prefix for resource names (3-11 letters or digits).')
@minLength(3)
@maxLength(11)
param namePrefix string

@description('Partners, each with its own upload container partner-<id>. Ids: lower-case letters, digits, hyphens.')
param partners array = []

@description('The profiles document (REGISTRAR_PROFILES): profiles with group tag and Entra group id, and partners\' allowed profiles.')
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
var storageName = take('${namePrefix}st${suffix}', 24)
var appName = '${namePrefix}-func-${suffix}'
var partnerContainers = [for p in partners: 'partner-${p.id}']
var uploadContainers = concat(['device-uploads'], partnerContainers)

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

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    storageName: storageName
    uploadContainers: uploadContainers
    deploymentContainer: 'app-package'
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
    blobServiceUri: storage.outputs.blobEndpoint
    queueServiceUri: storage.outputs.queueEndpoint
    tableServiceUri: storage.outputs.tableEndpoint
    deploymentContainerUrl: '${storage.outputs.blobEndpoint}app-package'
    serviceBusNamespaceFqdn: serviceBus.outputs.fqdn
    appInsightsConnectionString: monitoring.outputs.connectionString
    profilesJson: profilesJson
    queueName: queueName
    reconcileSchedule: reconcileSchedule
    maxUploadBytes: maxUploadBytes
    maximumInstanceCount: maximumInstanceCount
    lockDuration: lockDuration
    duplicateDetectionWindow: duplicateDetectionWindow
    graphWriteBudget: graphWriteBudget
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

module events 'modules/eventgrid.bicep' = if (deployEventSubscriptions) {
  name: 'eventgrid'
  params: {
    location: location
    storageName: storage.outputs.storageName
    appName: functionApp.outputs.name
    containers: uploadContainers
  }
}

output functionAppName string = functionApp.outputs.name
output managedIdentityPrincipalId string = identity.outputs.principalId
output uploadContainerUrls array = [for c in uploadContainers: '${storage.outputs.blobEndpoint}${c}']
output queueName string = queueName
output storageAccountName string = storage.outputs.storageName
