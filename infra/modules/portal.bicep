// The admin portal (functions/portal.py, /api/portal/): App Service Authentication with Entra ID in front
// of the app, and CORS on the storage account so the page can PUT an upload with the short-lived SAS the
// API hands out.
//
// Authentication runs in "allow anonymous" mode on purpose: the Event Grid blob-trigger webhook
// (/runtime/webhooks/blobs) and the function-key status API must stay reachable without a sign-in. Easy
// Auth still signs portal users in (/.auth/login/aad), strips any X-MS-CLIENT-PRINCIPAL a client sends and
// sets its own; functions/portal.py refuses every call without a principal holding the app role
// Registrar.Admin or Registrar.Partner.<id> (assign them to the admin group and each partner's group in
// the app registration), and trusts the header only where the platform sets WEBSITE_AUTH_ENABLED.

param appName string
param storageName string

@description('Application (client) id of the portal\'s Entra app registration (ID tokens enabled; app roles Registrar.Admin and Registrar.Partner.<id>). Empty: no sign-in is configured and the portal answers 401.')
param portalClientId string = ''

@description('Entra groups whose members may sign in (the admin group and the partners\' groups). Empty: any user with an app role.')
param portalAllowedGroups array = []

resource site 'Microsoft.Web/sites@2023-12-01' existing = {
  name: appName
}

resource auth 'Microsoft.Web/sites/config@2023-12-01' = if (!empty(portalClientId)) {
  // checkov reads every sites/config resource as the site's "web" config; this one is authsettingsV2:
  // checkov:skip=CKV_AZURE_13: this resource is the App Service Authentication setting itself
  // checkov:skip=CKV_AZURE_222: not the site's network settings (functionapp.bicep explains public access)
  // checkov:skip=CKV_AZURE_63: not the web config; logs go to Application Insights (functionapp.bicep)
  // checkov:skip=CKV_AZURE_65: not the web config; detailed errors are not shown to callers
  // checkov:skip=CKV_AZURE_66: not the web config; failed requests are traced by Application Insights
  // checkov:skip=CKV_AZURE_80: not the web config; a Python app has no .NET Framework version
  // checkov:skip=CKV_AZURE_88: not the web config; Flex Consumption deploys from blob storage
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: portalClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            portalClientId
            'api://${portalClientId}'
          ]
          defaultAuthorizationPolicy: {
            allowedPrincipals: {
              groups: portalAllowedGroups
            }
          }
        }
      }
    }
    login: {
      tokenStore: {
        enabled: true
      }
    }
  }
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

// The blob service's settings as modules/storage.bicep sets them, plus CORS for the portal's origin only:
// PUT (the upload) and OPTIONS (its preflight); nothing can be read cross-origin.
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
    cors: {
      corsRules: [
        {
          allowedOrigins: [
            'https://${site.properties.defaultHostName}'
          ]
          allowedMethods: [
            'PUT'
            'OPTIONS'
          ]
          allowedHeaders: [
            'content-type'
            'x-ms-blob-type'
            'x-ms-version'
            'x-ms-client-request-id'
          ]
          exposedHeaders: [
            'etag'
            'x-ms-request-id'
          ]
          maxAgeInSeconds: 600
        }
      ]
    }
  }
}
