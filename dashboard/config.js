// Where the dashboard finds the API and how users sign in: edit this file per deployment (no
// build step). It is a plain script, loaded before the app, so a static host can serve a
// different copy per environment.
window.DASHBOARD_CONFIG = {
  // The HTTP API's base URL, without a trailing slash; "" is the page's own origin (make dev).
  apiBase: "",
  // "local": a user picker that gets a token from the local stack's POST /_local/tokens.
  // "cognito": the Cognito hosted UI, authorization code flow with PKCE: the page exchanges the
  // code at the hosted UI's token endpoint and keeps the token in sessionStorage for the tab's
  // life. The page's Content-Security-Policy must allow connecting to `domain` and `apiBase`.
  auth: "local",
  cognito: {
    domain: "", // the hosted UI: template.yaml output HostedUiDomain
    clientId: "", // template.yaml output UserPoolClientId (the JWT audience)
    // "" = this page's URL. It must be one of the app client's callback URLs, and its sign-out
    // URLs too (sign-out sends the browser to the hosted UI's /logout, which comes back here).
    redirectUri: "",
    scope: "openid email",
    // The ID token carries custom:account_id and cognito:groups, the claims the API reads.
    token: "id_token",
  },
};
