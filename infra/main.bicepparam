using './main.bicep'

param namePrefix = 'apreg'
param partners = [
  {
    id: 'contoso'
    profiles: ['standard']
  }
]
// The same document as REGISTRAR_PROFILES: each profile's group tag and Entra group object id.
param profilesJson = '{"profiles": {"standard": {"groupTag": "Microsoft365Managed_Autopilot", "groupId": "00000000-0000-0000-0000-000000000001"}, "kiosk": {"groupTag": "Kiosk", "groupId": "00000000-0000-0000-0000-000000000002"}}, "partners": {"contoso": {"profiles": ["standard"]}}}'
param maxDeliveryCount = 5
param lockDuration = 'PT5M'
param deployEventSubscriptions = false
