using './main.bicep'

param namePrefix = 'apreg'
// The ONE list of partners and profiles: infra/profiles.json. Bicep derives the partner containers and
// Event Grid subscriptions from it, and the app reads the same text as REGISTRAR_PROFILES. Edit it with
// `python -m registrar partner add|remove ... --config infra/profiles.json`, then redeploy.
param profilesJson = loadTextContent('profiles.json')
param maxDeliveryCount = 5
param lockDuration = 'PT5M'
param deployEventSubscriptions = false
