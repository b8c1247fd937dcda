import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import request from 'supertest';
import { freePort } from '../src/infra/processes.js';
import { Public, Roles } from '../src/auth/access.decorator.js';
import { AuthModule } from '../src/auth/auth.module.js';
import { ProblemFilter } from '../src/common/problem.filter.js';
import { ConfigModule } from '@nestjs/config';
import {
  createTestDatabase,
  startTestApp,
  testConfig,
  type TestApp,
  type TestDatabase,
} from './support/test-env.js';

const CITIZEN = '199012119948'; // a valid test number from the personnummer list

const now = (): number => Math.floor(Date.now() / 1000);

/**
 * A token shaped like leo's dev tokens, signed with any secret: to test what leo refuses.
 * `issuedAt`/`expiresAt` false leave the claim out.
 */
function hs256(
  claims: Record<string, unknown>,
  secret: string,
  subject: string,
  times: { issuedAt?: number | false; expiresAt?: number | string | false } = {},
): Promise<string> {
  const token = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('urn:leo:dev')
    .setAudience('leo')
    .setSubject(subject);
  if (times.issuedAt !== false) token.setIssuedAt(times.issuedAt ?? now());
  if (times.expiresAt !== false) token.setExpirationTime(times.expiresAt ?? '5m');
  return token.sign(new TextEncoder().encode(secret));
}

async function devToken(leo: TestApp, body: Record<string, unknown>): Promise<string> {
  const response = await request(leo.app.getHttpServer())
    .post('/v1/dev/token')
    .send(body)
    .expect(200);
  return (response.body as { accessToken: string }).accessToken;
}

describe('dev tokens and the session route', () => {
  let leo: TestApp;
  beforeAll(async () => {
    leo = await startTestApp();
  });
  afterAll(async () => {
    await leo.close();
  });

  it('issues a citizen token whose subject does not reveal the identity number', async () => {
    const response = await request(leo.app.getHttpServer())
      .post('/v1/dev/token')
      .send({ role: 'citizen', personalNumber: '901211-9948' })
      .expect(200);
    expect(response.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 3600 });
    const me = await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${response.body.accessToken as string}`)
      .expect(200);
    expect(me.body.role).toBe('citizen');
    expect(me.body.subject).toMatch(/^citizen-[0-9a-f]{20}$/);
    expect(JSON.stringify(me.body)).not.toContain('9948');
  });

  it('issues admin and agency tokens; an agency token names its agency', async () => {
    const admin = await devToken(leo, { role: 'admin' });
    await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${admin}`)
      .expect(200)
      .expect((r) => {
        expect(r.body).toEqual({ role: 'admin', subject: 'dev-admin' });
      });
    const agency = await devToken(leo, { role: 'agency', agency: 'skatteverket' });
    await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${agency}`)
      .expect(200)
      .expect((r) => {
        expect(r.body).toMatchObject({ role: 'agency', agency: 'skatteverket' });
      });
  });

  it.each([
    [{ role: 'citizen', personalNumber: '199012119949' }, 'personalNumber'],
    [{ role: 'citizen' }, 'personalNumber'],
    [{ role: 'agency' }, 'agency'],
    [{ role: 'agency', agency: 'Skatte Verket' }, 'agency'],
    [{ role: 'king' }, 'role'],
    [{ role: 'admin', extra: 1 }, 'extra'],
    [{ role: 'admin', subject: 'x'.repeat(65) }, 'subject'],
  ])('refuses %j with 400 naming %s', async (body, field) => {
    const response = await request(leo.app.getHttpServer())
      .post('/v1/dev/token')
      .send(body)
      .expect(400);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.body.code).toBe('validation-failed');
    expect(response.body.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: field })]),
    );
  });

  it('answers malformed JSON with 400, not 500', async () => {
    const response = await request(leo.app.getHttpServer())
      .post('/v1/dev/token')
      .set('Content-Type', 'application/json')
      .send('{"role": ')
      .expect(400);
    expect(response.body.code).toBe('malformed-json');
  });

  it('answers a body that is too large with 413', async () => {
    const response = await request(leo.app.getHttpServer())
      .post('/v1/dev/token')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ role: 'admin', subject: 'x'.repeat(200_000) }))
      .expect(413);
    expect(response.body.code).toBe('content-too-large');
  });

  it('does not keep serving a token it verified once after it has expired', async () => {
    const token = await hs256({ leo_roles: ['admin'] }, leo.config.auth.devSecret ?? '', 'soon', {
      expiresAt: now() + 2,
    });
    const me = (): request.Test =>
      request(leo.app.getHttpServer()).get('/v1/me').set('Authorization', `Bearer ${token}`);
    await me().expect(200);
    await me().expect(200); // remembered
    await new Promise((r) => setTimeout(r, 2_100));
    const late = await me().expect(401);
    expect(late.body.detail).toContain('expired');
  });

  it('takes the roles claim only as a list of known roles holding exactly one', async () => {
    const me = async (roles: unknown): Promise<request.Response> =>
      request(leo.app.getHttpServer())
        .get('/v1/me')
        .set(
          'Authorization',
          `Bearer ${await hs256({ leo_roles: roles }, leo.config.auth.devSecret ?? '', 'strict')}`,
        );
    expect((await me(['admin'])).status).toBe(200);
    for (const roles of ['admin', ['admin', 'superuser'], ['admin', 7], ['admin', 'citizen'], []]) {
      const response = await me(roles);
      expect({ roles, status: response.status, code: response.body.code }).toEqual({
        roles,
        status: 403,
        code: 'no-role',
      });
    }
  });

  it('refuses a missing, malformed, forged or expired token with 401', async () => {
    const server = leo.app.getHttpServer();
    const missing = await request(server).get('/v1/me').expect(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    expect(missing.body.code).toBe('missing-token');
    await request(server).get('/v1/me').set('Authorization', 'Bearer not-a-jwt').expect(401);
    await request(server).get('/v1/me').set('Authorization', 'Basic dXNlcjpwYXNz').expect(401);

    const forged = await hs256(
      { leo_roles: ['admin'] },
      'a-different-secret-of-sufficient-length!!',
      'mallory',
    );
    const refused = await request(server)
      .get('/v1/me')
      .set('Authorization', `Bearer ${forged}`)
      .expect(401);
    expect(refused.body.code).toBe('invalid-token');

    const expired = await hs256({ leo_roles: ['admin'] }, leo.config.auth.devSecret ?? '', 'old', {
      issuedAt: now() - 7200,
      expiresAt: now() - 3600,
    });
    const late = await request(server)
      .get('/v1/me')
      .set('Authorization', `Bearer ${expired}`)
      .expect(401);
    expect(late.body.detail).toContain('expired');
  });

  it.each([
    ['exp', { expiresAt: false }],
    ['iat', { issuedAt: false }],
  ] as const)('refuses a dev-signed token without %s', async (claim, times) => {
    const token = await hs256(
      { leo_roles: ['admin'] },
      leo.config.auth.devSecret ?? '',
      'x',
      times,
    );
    const response = await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${token}`)
      .expect(401);
    expect(response.body).toMatchObject({ code: 'invalid-token' });
    expect(response.body.detail).toContain(`"${claim}" claim is missing`);
  });

  it('refuses a dev token older than the dev token lifetime, whatever its exp says', async () => {
    const token = await hs256({ leo_roles: ['admin'] }, leo.config.auth.devSecret ?? '', 'x', {
      issuedAt: now() - leo.config.auth.devTokenTtlSeconds - 60,
      expiresAt: now() + 3600,
    });
    await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${token}`)
      .expect(401);
  });

  it('refuses a citizen token whose subject is the personal identity number', async () => {
    // Subjects are stored and may be logged: a subject spelling out the number would leak it.
    const subjects = [CITIZEN, CITIZEN.slice(2), `se:${CITIZEN.slice(0, 8)}-${CITIZEN.slice(8)}`];
    for (const subject of subjects) {
      const token = await hs256(
        { leo_roles: ['citizen'], 'https://id.oidc.se/claim/personalIdentityNumber': CITIZEN },
        leo.config.auth.devSecret ?? '',
        subject,
      );
      const response = await request(leo.app.getHttpServer())
        .get('/v1/me')
        .set('Authorization', `Bearer ${token}`)
        .expect(401);
      expect(response.body.code).toBe('invalid-token');
      expect(JSON.stringify(response.body)).not.toContain(CITIZEN.slice(2));
      // Nor does the dev token route mint one.
      const minted = await request(leo.app.getHttpServer())
        .post('/v1/dev/token')
        .send({ role: 'citizen', personalNumber: CITIZEN, subject })
        .expect(400);
      expect(minted.body.errors).toEqual([expect.objectContaining({ path: 'subject' })]);
    }
  });
});

describe('dev tokens disabled', () => {
  let leo: TestApp;
  beforeAll(async () => {
    leo = await startTestApp({
      AUTH_DEV_TOKENS: 'false',
      AUTH_ISSUER: 'https://idp.invalid',
      AUTH_AUDIENCE: 'leo',
      AUTH_JWKS_URL: 'https://idp.invalid/jwks',
    });
  });
  afterAll(async () => {
    await leo.close();
  });

  it('has no dev token route at all', async () => {
    await request(leo.app.getHttpServer())
      .post('/v1/dev/token')
      .send({ role: 'admin' })
      .expect(404);
    const docs = await request(leo.app.getHttpServer()).get('/docs-json').expect(200);
    expect(Object.keys(docs.body.paths)).not.toContain('/v1/dev/token');
  });

  it('does not accept dev-signed tokens', async () => {
    const token = await hs256({ leo_roles: ['admin'] }, 'x'.repeat(40), 'x');
    await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${token}`)
      .expect(401);
  });
});

describe('tokens from an external OpenID Connect issuer', () => {
  let leo: TestApp;
  let jwksServer: Server;
  let privateKey: CryptoKey;
  let jwk: JWK;
  let issuer: string;

  beforeAll(async () => {
    const keys = await generateKeyPair('ES256');
    privateKey = keys.privateKey;
    jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    jwksServer = createServer((_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const address = jwksServer.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    issuer = `http://127.0.0.1:${port}`;
    leo = await startTestApp({
      AUTH_DEV_TOKENS: 'false',
      AUTH_ISSUER: issuer,
      AUTH_AUDIENCE: 'leo-api',
      AUTH_JWKS_URL: `${issuer}/jwks`,
    });
  });
  afterAll(async () => {
    await leo.close();
    await new Promise((resolve) => jwksServer.close(resolve));
  });

  const sign = (
    claims: Record<string, unknown>,
    audience = 'leo-api',
    options: {
      issuer?: string;
      subject?: string;
      issuedAt?: number | false;
      expiresAt?: number | string | false;
    } = {},
  ): Promise<string> => {
    const token = new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(options.issuer ?? issuer)
      .setAudience(audience)
      .setSubject(options.subject ?? 'pairwise-abc');
    if (options.issuedAt !== false) token.setIssuedAt(options.issuedAt ?? now());
    if (options.expiresAt !== false) token.setExpirationTime(options.expiresAt ?? '5m');
    return token.sign(privateKey);
  };

  const status = async (token: string): Promise<{ status: number; code: unknown }> => {
    const response = await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${token}`);
    return { status: response.status, code: (response.body as { code?: unknown }).code };
  };

  it('accepts a citizen token with the Swedish OIDC personal number claim', async () => {
    const token = await sign({
      leo_roles: ['citizen'],
      'https://id.oidc.se/claim/personalIdentityNumber': CITIZEN,
    });
    const me = await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${token}`);
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ role: 'citizen', subject: 'pairwise-abc' });
  });

  it('refuses the wrong audience, and a citizen token without a valid personal number', async () => {
    const wrongAudience = await sign({ leo_roles: ['admin'] }, 'someone-else');
    await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${wrongAudience}`)
      .expect(401);
    const noNumber = await sign({
      leo_roles: ['citizen'],
      'https://id.oidc.se/claim/personalIdentityNumber': '123',
    });
    await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${noNumber}`)
      .expect(401);
  });

  it('refuses a signed token without exp (it would never expire) or without iat', async () => {
    expect(await status(await sign({ leo_roles: ['admin'] }))).toEqual({
      status: 200,
      code: undefined,
    });
    expect(
      await status(await sign({ leo_roles: ['admin'] }, 'leo-api', { expiresAt: false })),
    ).toEqual({ status: 401, code: 'invalid-token' });
    expect(
      await status(await sign({ leo_roles: ['admin'] }, 'leo-api', { issuedAt: false })),
    ).toEqual({ status: 401, code: 'invalid-token' });
  });

  it('refuses a token issued more than 12 hours ago, whatever its exp says', async () => {
    const old = await sign({ leo_roles: ['admin'] }, 'leo-api', {
      issuedAt: now() - 13 * 3600,
      expiresAt: now() + 3600,
    });
    expect(await status(old)).toEqual({ status: 401, code: 'invalid-token' });
  });

  it('refuses an HS256 token claiming the issuer (asymmetric algorithms only)', async () => {
    // The classic confusion: HMAC keyed with the issuer's public key, which anyone can fetch.
    // Refused twice over: by leo's asymmetric allow-list and by jose, which never takes a
    // symmetric algorithm's key from a JWKS. (`alg: none` has no test: jose's jwtVerify never
    // accepts an unsecured token, whatever the allow-lists say, so no such test could fail.)
    const token = await new SignJWT({ leo_roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience('leo-api')
      .setSubject('mallory')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(jwk)));
    expect(await status(token)).toEqual({ status: 401, code: 'invalid-token' });
  });

  it('refuses a token from a foreign issuer, even one signed with a key leo knows', async () => {
    const foreign = await sign({ leo_roles: ['admin'] }, 'leo-api', {
      issuer: 'https://idp.foreign.example',
    });
    expect(await status(foreign)).toEqual({ status: 401, code: 'invalid-token' });
  });

  it('refuses a citizen token whose subject is the personal identity number', async () => {
    for (const subject of [CITIZEN, `${CITIZEN.slice(2, 8)}-${CITIZEN.slice(8)}`]) {
      const token = await sign(
        { leo_roles: ['citizen'], 'https://id.oidc.se/claim/personalIdentityNumber': CITIZEN },
        'leo-api',
        { subject },
      );
      expect(await status(token)).toEqual({ status: 401, code: 'invalid-token' });
    }
  });
});

describe('an identity provider that does not answer', () => {
  let leo: TestApp;
  let idp: Server;
  let answer: 'error' | 'garbage' = 'error';
  let privateKey: CryptoKey;
  let issuer: string;

  beforeAll(async () => {
    ({ privateKey } = await generateKeyPair('ES256'));
    idp = createServer((_req, res) => {
      if (answer === 'error') {
        res.statusCode = 502;
        res.end('bad gateway');
      } else {
        res.setHeader('Content-Type', 'application/json');
        res.end('{"keys": "none"}');
      }
    });
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
    const address = idp.address();
    issuer = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    leo = await startTestApp({
      AUTH_DEV_TOKENS: 'false',
      AUTH_ISSUER: issuer,
      AUTH_AUDIENCE: 'leo-api',
      AUTH_JWKS_URL: `${issuer}/jwks`,
    });
  });
  afterAll(async () => {
    await leo.close();
    if (idp.listening) await new Promise((resolve) => idp.close(resolve));
  });

  const token = (): Promise<string> =>
    new SignJWT({ leo_roles: ['admin'] })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience('leo-api')
      .setSubject('pairwise-abc')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);

  const expectUnavailable = async (): Promise<void> => {
    const response = await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${await token()}`);
    expect(response.status).toBe(503);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.headers['www-authenticate']).toBeUndefined();
    expect(response.body).toMatchObject({ status: 503, code: 'identity-provider-unavailable' });
  };

  it('answers 503, not 401 or 500, while its keys cannot be fetched', async () => {
    answer = 'error';
    await expectUnavailable();
    answer = 'garbage';
    await expectUnavailable();
    // Down altogether: nothing listens on the port any more.
    await new Promise((resolve) => idp.close(resolve));
    await expectUnavailable();
  });

  it('answers 503 when its address refuses connections from the start', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const down = await startTestApp(
      {
        AUTH_DEV_TOKENS: 'false',
        AUTH_ISSUER: issuer,
        AUTH_AUDIENCE: 'leo-api',
        AUTH_JWKS_URL: `${closed}/jwks`,
      },
      { database: leo.database },
    );
    try {
      const response = await request(down.app.getHttpServer())
        .get('/v1/me')
        .set('Authorization', `Bearer ${await token()}`)
        .expect(503);
      expect(response.body.code).toBe('identity-provider-unavailable');
    } finally {
      await down.close();
    }
  });
});

// Routes of a test-only controller: one for admins only, one that forgot to declare access.
@Controller('probe')
class ProbeController {
  @Get('admin')
  @Roles('admin')
  admin(): { ok: true } {
    return { ok: true };
  }

  @Get('open')
  @Public()
  open(): { ok: true } {
    return { ok: true };
  }
}

@Controller('forgotten')
class ForgottenController {
  @Get()
  forgot(): { ok: true } {
    return { ok: true };
  }
}

describe('access is declared per route, and the default is deny', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  const moduleWith = (controller: new () => object): new () => object => {
    const config = testConfig(database);
    @Module({
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true,
          ignoreEnvVars: true,
          load: [() => config],
        }),
        AuthModule.forRoot({ api: true, devTokens: true }),
      ],
      controllers: [controller],
    })
    class ProbeModule {}
    return ProbeModule;
  };

  it('refuses a citizen on an admin route with 403 and lets the admin in', async () => {
    const app = await NestFactory.create(moduleWith(ProbeController), { logger: false });
    app.useGlobalFilters(new ProblemFilter());
    await app.init();
    try {
      const server = app.getHttpServer();
      const citizen = await request(server)
        .post('/v1/dev/token')
        .send({ role: 'citizen', personalNumber: CITIZEN });
      const admin = await request(server).post('/v1/dev/token').send({ role: 'admin' });
      await request(server)
        .get('/probe/admin')
        .set('Authorization', `Bearer ${citizen.body.accessToken as string}`)
        .expect(403);
      await request(server)
        .get('/probe/admin')
        .set('Authorization', `Bearer ${admin.body.accessToken as string}`)
        .expect(200);
      await request(server).get('/probe/admin').expect(401);
      await request(server).get('/probe/open').expect(200);
    } finally {
      await app.close();
    }
  });

  it('will not start with a route that declares no access', async () => {
    const app = await NestFactory.create(moduleWith(ForgottenController), { logger: false });
    await expect(app.init()).rejects.toThrow(/ForgottenController\.forgot/);
    await app.close();
  });
});
