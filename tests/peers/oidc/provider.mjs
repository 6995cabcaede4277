// A real OpenID Provider (node `oidc-provider`, OpenID Certified) for OrgLogin's peer tests.
//
// Configuration: a JSON file named by OIDC_PEER_CONFIG, else environment variables:
//   OIDC_PEER_HOST (127.0.0.1), OIDC_PEER_PORT (required), OIDC_PEER_ISSUER
//   (default http://HOST:PORT), OIDC_PEER_CLIENT_ID, OIDC_PEER_CLIENT_SECRET,
//   OIDC_PEER_REDIRECT_URIS (comma-separated), OIDC_PEER_AUTH_METHOD
//   (client_secret_basic | client_secret_post).
// The JSON file has {host, port, issuer, clients: [{client_id, client_secret, redirect_uris,
// token_endpoint_auth_method}], accounts: {id: {email, email_verified, given_name, ...}}}.
// Without `accounts`, the test accounts `jane` and `sam` (@acme.test) exist.
//
// Development only: the built-in log-in and consent pages (devInteractions) accept any
// password for a known account id. Prints "oidc-provider ready <issuer>" when listening.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

function loadConfig() {
  const file = process.env.OIDC_PEER_CONFIG;
  const fromFile = file ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const env = process.env;
  const host = fromFile.host || env.OIDC_PEER_HOST || '127.0.0.1';
  const port = Number(fromFile.port || env.OIDC_PEER_PORT);
  if (!Number.isInteger(port) || port <= 0) {
    throw new Error('set OIDC_PEER_PORT (or "port" in the OIDC_PEER_CONFIG file)');
  }
  const issuer = fromFile.issuer || env.OIDC_PEER_ISSUER || `http://${host}:${port}`;
  const clients = fromFile.clients || [{
    client_id: env.OIDC_PEER_CLIENT_ID || 'orglogin',
    client_secret: env.OIDC_PEER_CLIENT_SECRET || 'orglogin-secret',
    redirect_uris: (env.OIDC_PEER_REDIRECT_URIS || '').split(',').filter(Boolean),
    token_endpoint_auth_method: env.OIDC_PEER_AUTH_METHOD || 'client_secret_basic',
  }];
  const accounts = fromFile.accounts || {
    jane: {
      email: 'jane@acme.test', email_verified: true,
      given_name: 'Jane', family_name: 'Doe', name: 'Jane Doe',
    },
    sam: {
      email: 'sam@acme.test', email_verified: true,
      given_name: 'Sam', family_name: 'Lee', name: 'Sam Lee',
    },
  };
  return { host, port, issuer, clients, accounts };
}

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `peer-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

const config = loadConfig();

const provider = new Provider(config.issuer, {
  clients: config.clients.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    ...client,
  })),
  jwks: { keys: [signingKey()] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
  },
  // Put the scope's claims into the ID token too (not only into userinfo).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    // An unknown id yields undefined, which the dev interactions turn into an error page.
    const account = Object.hasOwn(config.accounts, id) ? config.accounts[id] : undefined;
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...account };
      },
    };
  },
});

const server = provider.listen(config.port, config.host, () => {
  process.stdout.write(`oidc-provider ready ${config.issuer}\n`);
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
