import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { killLeftoverServices, startLeoProcess, type LeoProcess } from './support/leo-process.js';

/**
 * docs/adapters.md, "Your first adapter in ten minutes", followed step by step as a newcomer
 * would: the SDK packed from this checkout and installed by itself in a clean directory (it must
 * bring everything it needs: bullmq and ioredis), the example adapter copied there and run with
 * the credential leo issued, against leo started as `npm start` starts it (its own Postgres and
 * Redis). leo learns of the agency, its facts and a life event through the admin API only, then a
 * citizen's case runs through the adapter.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const example = path.join(root, 'examples/agency-adapter');
const guide = readFileSync(path.join(root, 'docs/adapters.md'), 'utf8');

// A test personal identity number, and a dog's name no log may show.
const PERSONAL_NUMBER = '199012119948';
const DOG_NAME = 'Bamse Hundkexsson';
/** How long after an admin's change a leo process surely acts on it: its cache's 5 s, and a margin. */
const TAKEN_UP_MS = 6_000;

interface Ran {
  stdout: string;
  stderr: string;
}

// What the test reads of leo's answers.
interface Token {
  accessToken: string;
}
interface IssuedCredential {
  id: string;
  username: string;
  password: string;
  prefix: string;
  redis: { host: string; port: number; tls: boolean; db: number };
}
interface CaseView {
  id: string;
  status: string;
  resolution?: { state: string; questions: Array<{ key: string }> };
  steps: Array<{ stepId: string; agency: string; state: string; agencyReference: string | null }>;
}
interface Preview {
  checksum: string;
  agencies: Array<{ agency: string }>;
}
interface FactRecord {
  key: string;
  value: unknown;
  source: string;
  agency: string | null;
  caseId: string | null;
  stepId: string | null;
}

/**
 * The environment of a newcomer's shell: this one without what `npm test` adds for its own
 * scripts (npm_package_*, npm_lifecycle_*, this project's npm_config_*), keeping where npm's
 * cache and registry are and how to reach them.
 */
function shellEnv(): NodeJS.ProcessEnv {
  const kept =
    /^npm_config_(cache|registry|userconfig|globalconfig|proxy|https_proxy|noproxy|cafile|strict_ssl)$/i;
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) || kept.test(name)),
  );
}

/** Runs a command to its end; rejects with its output when it fails. */
function run(command: string, args: string[], cwd: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: shellEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve({ stdout, stderr });
      else {
        const how = code === null ? `on ${signal ?? 'a signal'}` : `with ${code}`;
        reject(new Error(`${command} ${args.join(' ')} exited ${how}:\n${stderr}${stdout}`));
      }
    });
  });
}

/** The example adapter as a process of its own, its output kept. */
interface Adapter {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startAdapter(dir: string, env: Record<string, string>): Adapter {
  // A fresh shell with the variables docs/adapters.md exports, nothing of this test run's.
  const child = spawn(process.execPath, ['adapter.mjs'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', resolve);
  });
  return { child, output: () => output, exited };
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what}: not within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the example adapter, installed from the SDK tarball as docs/adapters.md says', () => {
  const scratch: string[] = [];
  let adapterDir: string;
  let dataDir: string;
  let leo: LeoProcess | undefined;
  let adapter: Adapter | undefined;
  let base = '';

  /** A temporary directory of this test's, removed at the end. */
  async function temporary(name: string): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), `leo-example-adapter-${name}-`));
    scratch.push(dir);
    return dir;
  }

  /** One call of leo's API; rejects naming the call and leo's answer when the status differs. */
  async function call<T = unknown>(
    method: string,
    route: string,
    options: {
      token?: string;
      body?: unknown;
      expect?: number;
      headers?: Record<string, string>;
    } = {},
  ): Promise<T> {
    const response = await fetch(`${base}${route}`, {
      method,
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await response.text();
    const expected = options.expect ?? 200;
    if (response.status !== expected) {
      throw new Error(`${method} ${route}: ${response.status}, not ${expected}: ${text}`);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** A citizen's case of get-a-dog, opened, consented to, submitted, and run to completion. */
  async function runCase(
    citizen: string,
    dogName: string,
    output: () => string,
  ): Promise<{ opened: CaseView; view: CaseView | undefined }> {
    const opened = await call<CaseView>('POST', '/v1/cases', {
      token: citizen,
      body: { lifeEvent: 'get-a-dog', answers: { 'dog.name': dogName } },
      headers: { prefer: 'wait=10' },
      expect: 201,
    });
    expect(opened.resolution).toMatchObject({ state: 'ready', questions: [] });
    const preview = await call<Preview>('GET', `/v1/cases/${opened.id}/preview`, {
      token: citizen,
    });
    expect(preview.agencies.map((a) => a.agency)).toEqual(['jordbruksverket']);
    await call('POST', `/v1/cases/${opened.id}/submit`, {
      token: citizen,
      body: { previewChecksum: preview.checksum },
      expect: 202,
    });
    let view: CaseView | undefined;
    await until(
      async () => {
        view = await call<CaseView>('GET', `/v1/cases/${opened.id}`, { token: citizen });
        if (view.status === 'completed') return true;
        if (['failed', 'cancelled', 'action-required'].includes(view.status)) {
          throw new Error(`the case is ${view.status}: ${JSON.stringify(view.steps)}`);
        }
        return false;
      },
      60_000,
      `the case to complete (adapter output:\n${output()})`,
    );
    return { opened, view };
  }

  const catalogueEntry = async (name: string): Promise<unknown> =>
    JSON.parse(await readFile(path.join(example, 'catalogue', `${name}.json`), 'utf8'));

  beforeAll(async () => {
    const sdkDir = await temporary('sdk');
    adapterDir = await temporary('dir');
    dataDir = await temporary('data');
    // As root, leo's Postgres runs as the postgres user, who must be able to enter the directory.
    await chmod(dataDir, 0o755);

    const startLeo = async (): Promise<void> => {
      // `npm start`: the build, without DATABASE_URL or REDIS_URL.
      leo = await startLeoProcess({ LEO_DATA_DIR: dataDir }, 120_000);
      base = `http://127.0.0.1:${leo.port}`;
    };
    const installAdapter = async (): Promise<void> => {
      // Step 2 of the guide, command by command.
      const packed = await run('npm', ['run', '-s', 'sdk:pack', '--', sdkDir], root);
      const tarball = packed.stdout.trim().split('\n').at(-1) ?? '';
      expect(tarball).toBe(path.join(sdkDir, 'leo-agency-contract-0.1.0.tgz'));
      await run('npm', ['init', '-y'], adapterDir);
      await run(
        'npm',
        ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'],
        adapterDir,
      );
      await copyFile(path.join(example, 'adapter.mjs'), path.join(adapterDir, 'adapter.mjs'));
    };
    await Promise.all([startLeo(), installAdapter()]);
  }, 180_000);

  afterAll(async () => {
    // Leave nothing running, whatever failed.
    if (adapter && adapter.child.exitCode === null && adapter.child.signalCode === null) {
      adapter.child.kill('SIGKILL');
    }
    await leo?.stop();
    killLeftoverServices(dataDir);
    for (const dir of scratch) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('is what the guide tells a newcomer to do', () => {
    const recipe = guide.split('## Your first adapter in ten minutes')[1]?.split('\n## ')[0] ?? '';
    for (const step of [
      'npm start',
      'TARBALL=$(npm run -s sdk:pack -- /tmp/leo-sdk)',
      'npm init -y',
      'npm install "$TARBALL"',
      'cp "$LEO_CHECKOUT/examples/agency-adapter/adapter.mjs" .',
      'for fact in dog.name dog.ownerRegistrationNumber; do',
      '$LEO/v1/admin/agencies/jordbruksverket -H',
      '-d @"$CATALOGUE/get-a-dog.json"',
      '$LEO/v1/admin/life-events/get-a-dog/draft/publish',
      '$LEO/v1/admin/agencies/jordbruksverket/credentials',
      'node adapter.mjs',
    ]) {
      expect(recipe).toContain(step);
    }
    // The variables the guide exports are the fields of the credential this test passes on.
    expect(
      [...recipe.matchAll(/^export (LEO_\w+)=\$\(echo "\$CREDENTIAL" \| jq -r (\S+)\)$/gm)].map(
        (m) => [m[1], m[2]],
      ),
    ).toEqual([
      ['LEO_REDIS_HOST', '.redis.host'],
      ['LEO_REDIS_PORT', '.redis.port'],
      ['LEO_REDIS_TLS', '.redis.tls'],
      ['LEO_REDIS_DB', '.redis.db'],
      ['LEO_REDIS_USERNAME', '.username'],
      ['LEO_REDIS_PASSWORD', '.password'],
      ['LEO_PREFIX', '.prefix'],
    ]);
  });

  it('says which variables are missing and exits with 2', async () => {
    const bare = startAdapter(adapterDir, {});
    await expect(within(bare.exited, 15_000, 'the adapter without configuration')).resolves.toBe(2);
    expect(bare.output()).toContain('LEO_REDIS_HOST is not set');
    expect(bare.output()).toContain('LEO_REDIS_PASSWORD is not set');
  });

  it('serves a case of a life event at an agency added through the admin API, first by its mock, then by the adapter', async () => {
    if (!leo) throw new Error('leo did not start');
    // Step 3: the catalogue, as leo's administrator.
    const admin = (
      await call<Token>('POST', '/v1/dev/token', { body: { role: 'admin', subject: 'admin-you' } })
    ).accessToken;
    for (const fact of ['dog.name', 'dog.ownerRegistrationNumber']) {
      await call('PUT', `/v1/admin/fact-types/${fact}`, {
        token: admin,
        body: await catalogueEntry(fact),
      });
    }
    const citizen = (
      await call<Token>('POST', '/v1/dev/token', {
        body: { role: 'citizen', personalNumber: PERSONAL_NUMBER },
      })
    ).accessToken;

    // Before the agency's adapter exists, the administrator tries the life event on leo's mock
    // of the agency, configured through the API (decision 0023).
    const external = (await catalogueEntry('jordbruksverket')) as {
      actions: Array<Record<string, unknown>>;
    };
    const mocked = (produce: object): object => ({
      ...external,
      adapter: 'mock',
      actions: external.actions.map((action) => ({
        ...action,
        mock: { requires: ['dog.name'], produce: { 'dog.ownerRegistrationNumber': produce } },
      })),
    });
    // Its case numbers do not fit the register number's pattern: refused, naming the rule.
    const misfit = await call<{ code: string; errors: Array<{ path: string; reason: string }> }>(
      'PUT',
      '/v1/admin/agencies/jordbruksverket',
      { token: admin, body: mocked({ generate: 'reference' }), expect: 422 },
    );
    expect(misfit.code).toBe('mock-values-invalid');
    expect(misfit.errors).toEqual([
      expect.objectContaining({
        path: '/actions/0/mock/produce/dog.ownerRegistrationNumber',
        reason: expect.stringContaining('must match pattern'),
      }),
    ]);
    await call('PUT', '/v1/admin/agencies/jordbruksverket', {
      token: admin,
      body: mocked({ template: 'JV-{year}-{digits:6}' }),
    });
    await call('POST', '/v1/admin/life-events', {
      token: admin,
      body: await catalogueEntry('get-a-dog'),
      expect: 201,
    });
    await call('POST', '/v1/admin/life-events/get-a-dog/draft/publish', { token: admin });
    const tried = await runCase(citizen, 'Vira', () => "(leo's mock)");
    expect(tried.view?.steps).toEqual([
      expect.objectContaining({
        state: 'completed',
        agencyReference: expect.stringMatching(/^JOR-/),
      }),
    ]);

    // Then the guide: the agency switched to its own adapter, the life event published again.
    const agency = await call<{ entry: object }>('PUT', '/v1/admin/agencies/jordbruksverket', {
      token: admin,
      body: await catalogueEntry('jordbruksverket'),
    });
    expect(agency.entry).toMatchObject({ code: 'jordbruksverket', adapter: 'external' });
    await call('POST', '/v1/admin/life-events', {
      token: admin,
      body: await catalogueEntry('get-a-dog'),
      expect: 201,
    });
    await call('POST', '/v1/admin/life-events/get-a-dog/draft/publish', { token: admin });
    // Each leo process re-reads its catalogue and life events at most every 5 s
    // (src/engine/engine-catalogue.ts): the citizen's case below must come after that.
    const takenUp = Date.now() + TAKEN_UP_MS;

    // Step 4: the credential, its fields passed on as the guide exports them.
    const credential = await call<IssuedCredential>(
      'POST',
      '/v1/admin/agencies/jordbruksverket/credentials',
      {
        token: admin,
        body: { label: 'jordbruksverket example adapter' },
        expect: 201,
      },
    );
    const env: Record<string, string> = {
      LEO_REDIS_HOST: credential.redis.host,
      LEO_REDIS_PORT: String(credential.redis.port),
      LEO_REDIS_TLS: String(credential.redis.tls),
      LEO_REDIS_DB: String(credential.redis.db),
      LEO_REDIS_USERNAME: credential.username,
      LEO_REDIS_PASSWORD: credential.password,
      LEO_PREFIX: credential.prefix,
    };

    // Step 5: the adapter, ready once it is connected with the credential.
    const running = startAdapter(adapterDir, env);
    adapter = running;
    await until(
      () => {
        if (running.child.exitCode !== null) {
          throw new Error(
            `the adapter exited with ${running.child.exitCode}:\n${running.output()}`,
          );
        }
        return running.output().includes('the jordbruksverket adapter is ready');
      },
      30_000,
      'the adapter to be ready',
    );

    // Step 6: a citizen's case, through the adapter.
    await new Promise((r) => setTimeout(r, Math.max(0, takenUp - Date.now())));
    const { opened, view } = await runCase(citizen, DOG_NAME, running.output);
    expect(view?.steps).toEqual([
      expect.objectContaining({
        stepId: 'owner-registration',
        agency: 'jordbruksverket',
        state: 'completed',
        agencyReference: expect.stringMatching(/^JVD-\d{4}-[0-9A-F]{8}$/),
      }),
    ]);

    // The fact the adapter produced, recorded with Jordbruksverket as its source.
    const facts = await call<{ facts: FactRecord[] }>('GET', '/v1/me/facts', { token: citizen });
    const produced = facts.facts.filter(
      (f) => f.key === 'dog.ownerRegistrationNumber' && f.caseId === opened.id,
    );
    expect(produced).toEqual([
      expect.objectContaining({
        value: expect.stringMatching(/^JV-\d{4}-\d{6}$/),
        source: 'agency',
        agency: 'jordbruksverket',
        caseId: opened.id,
        stepId: 'owner-registration',
      }),
    ]);

    // It said what it did, and never a fact's value or its password.
    const output = running.output();
    expect(output).toContain('"outcome":"completed"');
    for (const secret of [PERSONAL_NUMBER, DOG_NAME, produced[0]?.value, credential.password]) {
      expect(output).not.toContain(String(secret));
    }

    // Stopped as a supervisor stops it: it finishes, disconnects, exits 0.
    running.child.kill('SIGTERM');
    await expect(within(running.exited, 15_000, 'the adapter to stop')).resolves.toBe(0);
    expect(running.output()).toContain('"msg":"stopped"');

    // The credential revoked: its Redis user is gone (leo's Redis password is in its data dir).
    const revoked = await call<{ revokedAt: string | null }>(
      'DELETE',
      `/v1/admin/agency-credentials/${credential.id}`,
      { token: admin },
    );
    expect(revoked.revokedAt).toEqual(expect.any(String));
    const password = /requirepass (\S+)/.exec(
      await readFile(path.join(dataDir, 'redis/secrets.conf'), 'utf8'),
    )?.[1];
    const redis = new Redis({ host: credential.redis.host, port: credential.redis.port, password });
    try {
      expect(await redis.call('ACL', 'USERS')).not.toContain(credential.username);
    } finally {
      redis.disconnect();
    }
  }, 180_000);

  it('stops leo cleanly', async () => {
    if (!leo) throw new Error('leo did not start');
    await leo.stop();
    expect(leo.child.exitCode).toBe(0);
  }, 60_000);
});
