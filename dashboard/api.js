// The HTTP API as the dashboard sees it: the session's bearer token, JSON in and out, every
// failure turned into an ApiError whose `detail` is fit to show the user.

const config = window.DASHBOARD_CONFIG || {};
export const API_BASE = String(config.apiBase || "").replace(/\/+$/, "");
export const AUTH_MODE = config.auth === "cognito" ? "cognito" : "local";
const COGNITO = config.cognito || {};
const SESSION_KEY = "dashboard.session";
const STATE_KEY = "dashboard.oauth_state";
const VERIFIER_KEY = "dashboard.oauth_verifier";
const ACCOUNT_ID = /^[A-Za-z0-9_-]{1,64}$/;

export class ApiError extends Error {
  constructor(status, problem, detail) {
    super(detail);
    this.status = status; // 0: the request never got an answer
    this.problem = problem || {};
    this.code = this.problem.code || null;
    this.detail = detail;
  }
}

// ---------------------------------------------------------------- the session

/** The JWT's claims (display only: the API checks the signature). */
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(part.padEnd(Math.ceil(part.length / 4) * 4, "="));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

function sessionFrom(token) {
  const claims = claimsOf(token);
  const groups = claims["cognito:groups"] || [];
  return {
    token,
    accountId: claims["custom:account_id"] || "",
    user: claims["cognito:username"] || claims.sub || "",
    email: claims.email || "",
    billing: Array.isArray(groups) && groups.includes("billing"),
    expiresAt: typeof claims.exp === "number" ? claims.exp * 1000 : null,
  };
}

export function currentSession() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    if (!stored || typeof stored.token !== "string") return null;
    const session = sessionFrom(stored.token);
    if (session.expiresAt !== null && session.expiresAt <= Date.now()) {
      signOut();
      return null;
    }
    return session;
  } catch {
    return null;
  }
}

function keep(token) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token }));
  return sessionFrom(token);
}

export function signOut() {
  sessionStorage.removeItem(SESSION_KEY);
}

/** Local stack only: a token for a user of `accountId` from POST /_local/tokens. */
export async function signInLocally(accountId, billing) {
  if (!ACCOUNT_ID.test(accountId)) {
    throw new ApiError(0, null, "An account id is 1 to 64 letters, digits, '_' or '-'.");
  }
  const body = {
    account_id: accountId,
    user_id: `${accountId}-${billing ? "billing" : "member"}`,
    billing_access: billing,
  };
  const answer = await send("POST", "/_local/tokens", { body, token: null });
  return keep(answer.token);
}

/** Local stack only: a sign-up as Cognito would confirm it (POST /_local/signup runs the real
 * post-confirmation trigger): a new free account, this person its first billing user. */
export async function signUpLocally(email) {
  const answer = await send("POST", "/_local/signup", { body: { email }, token: null });
  return keep(answer.token);
}

function hostedUi() {
  return String(COGNITO.domain).replace(/\/+$/, "");
}

/** base64url without padding (RFC 7636, appendix A). */
function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The PKCE challenge of a verifier: BASE64URL(SHA-256(verifier)), method S256. */
async function codeChallenge(verifier) {
  const digest = await window.crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/**
 * Cognito: send the browser to the hosted UI (authorization code flow with PKCE). The code
 * verifier, 32 random bytes, stays in this tab's sessionStorage; only its SHA-256 leaves it, so
 * a code read from the address bar or a log is worth nothing without the tab.
 */
export async function signInWithCognito() {
  return toHostedUi("oauth2/authorize");
}

/**
 * Cognito: the hosted UI's sign-up page, with the same authorization request: the person picks
 * a password, confirms the code Cognito mails, and comes back signed in. Confirming runs the
 * post-confirmation trigger, which opens their free account (they are its billing user).
 */
export async function signUpWithCognito() {
  return toHostedUi("signup");
}

async function toHostedUi(page) {
  if (!COGNITO.domain || !COGNITO.clientId) {
    throw new ApiError(0, null, "Sign-in is not configured: set cognito.domain and cognito.clientId in config.js.");
  }
  if (!window.crypto || !window.crypto.subtle) {
    throw new ApiError(0, null, "Sign-in needs the page to be served over https.");
  }
  const state = randomId();
  const verifier = base64url(window.crypto.getRandomValues(new Uint8Array(32)));
  sessionStorage.setItem(STATE_KEY, state);
  sessionStorage.setItem(VERIFIER_KEY, verifier);
  const query = new URLSearchParams({
    response_type: "code",
    client_id: COGNITO.clientId,
    redirect_uri: redirectUri(),
    scope: COGNITO.scope || "openid email",
    state,
    code_challenge: await codeChallenge(verifier),
    code_challenge_method: "S256",
  });
  window.location.assign(`${hostedUi()}/${page}?${query}`);
}

/** Cognito: end the hosted UI's own session too (else the next sign-in skips the password). */
export function signOutOfCognito() {
  signOut();
  if (!COGNITO.domain || !COGNITO.clientId) return false;
  const query = new URLSearchParams({ client_id: COGNITO.clientId, logout_uri: redirectUri() });
  window.location.assign(`${hostedUi()}/logout?${query}`);
  return true;
}

function redirectUri() {
  return COGNITO.redirectUri || `${window.location.origin}${window.location.pathname}`;
}

/**
 * The hosted UI's redirect: `?code=...&state=...` (or `?error=...`). Takes them out of the
 * address bar at once, checks the state, then exchanges the code and the tab's verifier for the
 * tokens at the hosted UI's token endpoint and keeps the one the API takes for the tab.
 * Returns the session, null when the address is not a sign-in answer; throws on an error.
 */
export async function completeCognitoSignIn() {
  const params = new URLSearchParams(window.location.search);
  if (!params.has("code") && !params.has("error")) return null;
  window.history.replaceState(null, "", `${window.location.pathname}#/integrations`);
  const expected = sessionStorage.getItem(STATE_KEY);
  const verifier = sessionStorage.getItem(VERIFIER_KEY);
  sessionStorage.removeItem(STATE_KEY);
  sessionStorage.removeItem(VERIFIER_KEY);
  if (params.get("error")) {
    throw new ApiError(0, null, params.get("error_description") || "Sign-in was refused. Try again.");
  }
  if (!expected || !verifier || params.get("state") !== expected) {
    throw new ApiError(0, null, "This sign-in did not start here. Sign in again.");
  }
  let response;
  try {
    response = await fetch(`${hostedUi()}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: COGNITO.clientId,
        code: params.get("code"),
        redirect_uri: redirectUri(),
        code_verifier: verifier,
      }),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, null, "Could not reach the sign-in service. Check your connection and sign in again.");
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok || !answer) {
    throw new ApiError(0, null, "The sign-in could not be completed. Sign in again.");
  }
  const token = answer[COGNITO.token || "id_token"];
  if (typeof token !== "string" || !token) {
    throw new ApiError(0, null, "The sign-in answer had no token. Sign in again.");
  }
  return keep(token);
}

// ---------------------------------------------------------------- requests

export function randomId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") {
    return window.crypto.randomUUID();
  }
  // crypto.randomUUID needs a secure context; a version-4 UUID from getRandomValues otherwise.
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

let onUnauthorized = () => {};

/** What to do when the API says the token is no longer good (sign in again). */
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

function problemDetail(status, problem, statusText) {
  if (problem && typeof problem.detail === "string" && problem.detail) {
    const fields = Array.isArray(problem.errors)
      ? problem.errors
          .map((e) => (e && e.msg ? `${(e.loc || []).filter((p) => p !== "body").join(".")}: ${e.msg}` : ""))
          .filter(Boolean)
      : [];
    return fields.length ? `${problem.detail} (${fields.join("; ")})` : problem.detail;
  }
  if (status === 429) return "Too many requests right now. Wait a moment and try again.";
  if (status >= 500) return "The service had a problem answering. Try again in a moment.";
  return `The request failed (${status}${statusText ? ` ${statusText}` : ""}).`;
}

async function send(method, path, { body, token, idempotent = false }) {
  const headers = { Accept: "application/json, application/problem+json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  // A repeat with the same key is answered once (api.md): a double click never pays twice.
  if (idempotent) headers["Idempotency-Key"] = randomId();
  let response;
  try {
    response = await fetch(`${API_BASE}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, null, "Could not reach the server. Check your connection and try again.");
  }
  const text = await response.text().catch(() => "");
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) {
    const problem = parsed && typeof parsed === "object" ? parsed : null;
    throw new ApiError(response.status, problem, problemDetail(response.status, problem, response.statusText));
  }
  return parsed;
}

/** A call to the API with the session's token; a 401 ends the session. */
export async function api(method, path, { body, idempotent = false } = {}) {
  const session = currentSession();
  if (!session) {
    onUnauthorized();
    throw new ApiError(401, null, "Your session has ended. Sign in again.");
  }
  try {
    return await send(method, path, { body, token: session.token, idempotent });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut();
      onUnauthorized();
    }
    throw error;
  }
}

/**
 * A file the API answers (a receipt: PDF), fetched with the session's token, since a link cannot
 * carry it; the caller saves it from a blob URL. Errors as `api`.
 */
export async function download(path, accept) {
  const session = currentSession();
  if (!session) {
    onUnauthorized();
    throw new ApiError(401, null, "Your session has ended. Sign in again.");
  }
  let response;
  try {
    response = await fetch(`${API_BASE}${path}`, {
      headers: { Accept: `${accept}, application/problem+json`, Authorization: `Bearer ${session.token}` },
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, null, "Could not reach the server. Check your connection and try again.");
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => null);
    if (response.status === 401) {
      signOut();
      onUnauthorized();
    }
    throw new ApiError(response.status, problem, problemDetail(response.status, problem, response.statusText));
  }
  const disposition = response.headers.get("Content-Disposition") || "";
  const named = /filename="([^"]+)"/.exec(disposition);
  return { blob: await response.blob(), filename: named ? named[1] : "receipt.pdf" };
}

/** Every page of a paged list route (`items`, `next_cursor`). */
export async function allPages(path) {
  const items = [];
  let cursor = null;
  do {
    const separator = path.includes("?") ? "&" : "?";
    const page = await api("GET", cursor ? `${path}${separator}cursor=${encodeURIComponent(cursor)}` : path);
    items.push(...page.items);
    cursor = page.next_cursor || null;
  } while (cursor);
  return items;
}
