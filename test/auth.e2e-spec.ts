import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import request from 'supertest';
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

/** A token shaped like leo's dev tokens, signed with any secret: to test what leo refuses. */
function hs256(
  claims: Record<string, unknown>,
  secret: string,
  subject: string,
  expires: { issuedAt?: number; expiresAt: number | string } = { expiresAt: '5m' },
): Promise<string> {
  const token = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('urn:leo:dev')
    .setAudience('leo')
    .setSubject(subject)
    .setExpirationTime(expires.expiresAt);
  if (expires.issuedAt !== undefined) token.setIssuedAt(expires.issuedAt);
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
      issuedAt: Math.floor(Date.now() / 1000) - 7200,
      expiresAt: Math.floor(Date.now() / 1000) - 3600,
    });
    const late = await request(server)
      .get('/v1/me')
      .set('Authorization', `Bearer ${expired}`)
      .expect(401);
    expect(late.body.detail).toContain('expired');
  });

  it('refuses a token carrying two roles rather than guessing', async () => {
    const token = await hs256(
      { leo_roles: ['admin', 'citizen'] },
      leo.config.auth.devSecret ?? '',
      'both',
    );
    await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${token}`)
      .expect(403);
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
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  let issuer: string;

  beforeAll(async () => {
    const keys = await generateKeyPair('ES256');
    privateKey = keys.privateKey;
    const jwk: JWK = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
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

  const sign = (claims: Record<string, unknown>, audience = 'leo-api'): Promise<string> =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject('pairwise-abc')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);

  it('accepts a citizen token with the Swedish OIDC personal number claim', async () => {
    const token = await sign({
      leo_roles: 'citizen',
      'https://id.oidc.se/claim/personalIdentityNumber': CITIZEN,
    });
    const me = await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${token}`);
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ role: 'citizen', subject: 'pairwise-abc' });
  });

  it('refuses the wrong audience, and a citizen token without a valid personal number', async () => {
    const wrongAudience = await sign({ leo_roles: 'admin' }, 'someone-else');
    await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${wrongAudience}`)
      .expect(401);
    const noNumber = await sign({
      leo_roles: 'citizen',
      'https://id.oidc.se/claim/personalIdentityNumber': '123',
    });
    await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${noNumber}`)
      .expect(401);
  });

  it('refuses an unsigned token (alg none)', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const payload = Buffer.from(
      JSON.stringify({
        iss: issuer,
        aud: 'leo-api',
        sub: 'x',
        leo_roles: 'admin',
        exp: Date.now() / 1000 + 60,
      }),
    ).toString('base64url');
    await request(leo.app.getHttpServer())
      .get('/v1/me')
      .set('Authorization', `Bearer ${header}.${payload}.`)
      .expect(401);
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
