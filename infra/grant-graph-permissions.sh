#!/usr/bin/env bash
# Grant the app's managed identity the Microsoft Graph application permissions it needs:
#   DeviceManagementServiceConfig.ReadWrite.All  (Autopilot imports, devices, sync)
#   GroupMember.ReadWrite.All                     (profile group membership)
#   Device.Read.All                               (find Entra device objects)
# Run once per deployment by someone allowed to grant application permissions (Privileged Role
# Administrator or Global Administrator), signed in with `az login`.
# Usage: infra/grant-graph-permissions.sh <managed identity principal id>   (a deployment output)
set -euo pipefail
principal="${1:?usage: $0 <managed identity principal id>}"
graph_app_id="00000003-0000-0000-c000-000000000000"
graph_sp=$(az ad sp show --id "$graph_app_id" --query id -o tsv)
for permission in DeviceManagementServiceConfig.ReadWrite.All GroupMember.ReadWrite.All Device.Read.All; do
  role=$(az ad sp show --id "$graph_app_id" --query "appRoles[?value=='$permission' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)
  existing=$(az rest --method GET \
    --uri "https://graph.microsoft.com/v1.0/servicePrincipals/$principal/appRoleAssignments" \
    --query "value[?appRoleId=='$role'].id | [0]" -o tsv)
  if [ -n "$existing" ]; then
    echo "already granted: $permission"
    continue
  fi
  az rest --method POST \
    --uri "https://graph.microsoft.com/v1.0/servicePrincipals/$principal/appRoleAssignments" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\": \"$principal\", \"resourceId\": \"$graph_sp\", \"appRoleId\": \"$role\"}" >/dev/null
  echo "granted: $permission"
done
