#!/usr/bin/env bash
# Grant the app's managed identity the Microsoft Graph application permissions it needs:
#   DeviceManagementServiceConfig.ReadWrite.All  (Autopilot imports, devices, sync)
#   GroupMember.ReadWrite.All                     (profile group membership)
#   Device.ReadWrite.All                          (adding a *device* to a group needs it besides
#                                                  GroupMember.ReadWrite.All: api-reference group-post-members;
#                                                  it also covers finding Entra device objects)
#   User.Read.All                                 (licence check: a user's assignedLicenses, api-reference user-get;
#                                                  only used when a profile has requiredLicenses)
#   LicenseAssignment.Read.All                    (licence check: SKU ids -> part numbers, GET /subscribedSkus,
#                                                  api-reference subscribedsku-list; same condition)
# The set is kept in step with the routes the product calls by tests/unit/test_graph_permissions.py.
# A tenant that refuses Device.ReadWrite.All can use dynamic [OrderId] groups instead (infra/README.md).
# Run once per deployment by someone allowed to grant application permissions (Privileged Role
# Administrator or Global Administrator), signed in with `az login`.
# Usage: infra/grant-graph-permissions.sh <managed identity principal id>   (a deployment output)
set -euo pipefail
principal="${1:?usage: $0 <managed identity principal id>}"
graph_app_id="00000003-0000-0000-c000-000000000000"
graph_sp=$(az ad sp show --id "$graph_app_id" --query id -o tsv)
for permission in DeviceManagementServiceConfig.ReadWrite.All GroupMember.ReadWrite.All Device.ReadWrite.All User.Read.All LicenseAssignment.Read.All; do
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
