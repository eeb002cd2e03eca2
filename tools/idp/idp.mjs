// Test-only OpenID Connect provider with a Firefox Accounts-style verifier, for tests/test_identity_*.py.
// A real oidc-provider (panva) on loopback:
//   node idp.mjs     env: IDP_PORT (9011), IDP_KEYS (./idp-keys.json: created with a fresh RS256 key
//                    and a random kid when missing), IDP_REDIRECT_URIS (comma-separated, for the code flow)
// Tokens without a browser: POST /token grant_type=urn:test:password username=... [scope=...]
//   [resource=urn:kinto:api -> RS256 JWT access token, typ at+jwt; else opaque, usable at /me].
// FxA layout: keys at /v1/jwks, POST /v1/verify {"token"} -> {user, client_id, scope[], generation}.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const PORT = Number(process.env.IDP_PORT || 9011);
const ISSUER = `http://127.0.0.1:${PORT}`;
const KEYS = process.env.IDP_KEYS || './idp-keys.json';
const RESOURCE = 'urn:kinto:api';
const SCOPES = ['openid', 'offline_access', 'email', 'profile', 'kinto', 'https://identity.mozilla.com/apps/oldsync'];
const REDIRECTS = (process.env.IDP_REDIRECT_URIS || 'http://127.0.0.1:8888/v1/openid/idp/token').split(',');

const resourceServer = (resource) => {
  if (resource !== RESOURCE) throw new Error(`unknown resource ${resource}`);
  return {
    scope: SCOPES.join(' '), audience: RESOURCE, accessTokenFormat: 'jwt', accessTokenTTL: 3600,
    jwt: { sign: { alg: 'RS256' } },
  };
};

// A signing key kept in a file, so a restarted provider still signs with it; a new file is a key rotation.
if (!existsSync(KEYS)) {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const kid = `k-${randomBytes(6).toString('hex')}`;
  const jwk = { ...(await jose.exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  writeFileSync(KEYS, JSON.stringify({ keys: [jwk] }));
}
const jwks = JSON.parse(readFileSync(KEYS, 'utf8'));

// Three clients: one for Kinto's OpenID policy and the admin's code flow, two as separate apps.
const client = (client_id, client_secret) => ({
  client_id, client_secret,
  grant_types: ['client_credentials', 'authorization_code', 'refresh_token', 'urn:test:password'],
  response_types: ['code'],
  redirect_uris: REDIRECTS,
  token_endpoint_auth_method: 'client_secret_post',
});

const provider = new Provider(ISSUER, {
  jwks,
  clients: [client('test-client', 'test-secret'), client('app-a', 'secret-a'), client('app-b', 'secret-b')],
  // Every name is an account, with claims derived from it.
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub, email: `${sub}@example.test`, email_verified: true }; } };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  scopes: SCOPES,
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => undefined,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resource) => resourceServer(resource),
    },
  },
  async extraTokenClaims(ctx) {
    const g = ctx?.oidc?.params?.generation;
    return g ? { 'fxa-generation': Number(g) } : undefined;
  },
  routes: { jwks: '/v1/jwks' },
  ttl: { AccessToken: 3600, ClientCredentials: 3600, Grant: 3600, IdToken: 3600, Interaction: 3600, Session: 3600 },
});

// A user-bound access token without a browser.
provider.registerGrantType('urn:test:password', async (ctx) => {
  const { username, scope = 'openid email', resource } = ctx.oidc.params;
  if (!username) {
    ctx.status = 400;
    ctx.body = { error: 'invalid_request', error_description: 'username required' };
    return;
  }
  const { Grant, AccessToken, ResourceServer } = ctx.oidc.provider;
  const oidcClient = ctx.oidc.client;
  const grant = new Grant({ accountId: username, clientId: oidcClient.clientId });
  const at = new AccessToken({ accountId: username, client: oidcClient, gty: 'urn:test:password', scope });
  if (resource) {
    grant.addResourceScope(resource, scope);
    at.resourceServer = new ResourceServer(resource, resourceServer(resource));
  } else {
    grant.addOIDCScope(scope);
  }
  at.grantId = await grant.save();
  const value = await at.save();
  ctx.body = { access_token: value, token_type: 'Bearer', expires_in: at.expiration, scope: at.scope };
}, ['username', 'scope', 'resource', 'generation']);

// FxA's remote verification: a JWT by its signature, an opaque token by the provider's own store.
const publicSet = jose.createLocalJWKSet({ keys: jwks.keys.map(({ d, p, q, dp, dq, qi, ...pub }) => pub) });
async function verify(token) {
  if (token.split('.').length === 3) {
    const { payload } = await jose.jwtVerify(token, publicSet, { issuer: ISSUER, typ: 'at+jwt' });
    return { user: payload.sub, client_id: payload.client_id, scope: String(payload.scope || '').split(' ').filter(Boolean), generation: payload['fxa-generation'] ?? null };
  }
  const at = await provider.AccessToken.find(token);
  if (!at || !at.accountId) throw new Error('unknown token');
  return { user: at.accountId, client_id: at.clientId, scope: String(at.scope || '').split(' ').filter(Boolean), generation: null };
}
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/v1/verify') {
    const chunks = [];
    for await (const c of ctx.req) chunks.push(c);
    try {
      const { token } = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      ctx.body = await verify(String(token || ''));
    } catch {
      ctx.status = 400;
      ctx.body = { code: 400, errno: 108, error: 'Bad Request', message: 'Invalid token' };
    }
    return;
  }
  if (ctx.method === 'GET' && ctx.path === '/__heartbeat__') { ctx.body = {}; return; }
  await next();
  // PyFxA accepts only application/json here (oidc-provider says application/jwk-set+json).
  if (ctx.path === '/v1/jwks') ctx.type = 'application/json';
});

provider.listen(PORT, '127.0.0.1', () => console.log(`idp listening on ${ISSUER}`));
