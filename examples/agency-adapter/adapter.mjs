// An agency's adapter for leo, complete and runnable: Jordbruksverket (the Swedish Board of
// Agriculture), which keeps the register of dog owners, serving its one action
// `register-dog-owner`. docs/adapters.md ("Your first adapter in ten minutes") runs it against a
// leo started with `npm start`; the rest of that page is the contract it follows.
//
//   npm install <path to leo-agency-contract-<version>.tgz>   # the SDK, with bullmq and ioredis
//   LEO_REDIS_HOST=… LEO_REDIS_PORT=… LEO_REDIS_USERNAME=… LEO_REDIS_PASSWORD=… LEO_PREFIX=… \
//     node adapter.mjs
//
// Plain JavaScript (ESM), no build step. It never logs a fact's value: only ids, the action and
// the outcome.
import { randomBytes, randomInt } from 'node:crypto';
import { createAgencyWorker, describeHandlerError } from '@leo/agency-contract';

// ---- Configuration --------------------------------------------------------------------------
//
// One variable per field of the credential leo's administrator issued
// (POST /v1/admin/agencies/<code>/credentials answers with these fields):
//
//   LEO_REDIS_HOST      redis.host      where leo's Redis is
//   LEO_REDIS_PORT      redis.port
//   LEO_REDIS_TLS       redis.tls       `true` to connect over TLS (default false)
//   LEO_REDIS_DB        redis.db        leo's Redis database (default 0)
//   LEO_REDIS_USERNAME  username        the credential's Redis user
//   LEO_REDIS_PASSWORD  password        its password (shown once: keep it as a secret)
//   LEO_PREFIX          prefix          leo's key prefix, e.g. {leo}
//   LEO_AGENCY          agency          default jordbruksverket

/** Reads the configuration; every problem at once, so that one run says all that is wrong. */
function readConfig(env) {
  const problems = [];
  const text = (name, fallback) => {
    const value = env[name] ?? fallback;
    if (value === undefined || value === '') problems.push(`${name} is not set`);
    return value;
  };
  const integer = (name, fallback, min, max) => {
    const raw = text(name, fallback);
    if (raw === undefined || raw === '') return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}`);
    }
    return value;
  };
  const config = {
    host: text('LEO_REDIS_HOST'),
    port: integer('LEO_REDIS_PORT', undefined, 1, 65535),
    tls: text('LEO_REDIS_TLS', 'false'),
    db: integer('LEO_REDIS_DB', '0', 0, 1_000_000),
    username: text('LEO_REDIS_USERNAME'),
    password: text('LEO_REDIS_PASSWORD'),
    prefix: text('LEO_PREFIX'),
    agency: text('LEO_AGENCY', 'jordbruksverket'),
  };
  if (config.tls !== 'true' && config.tls !== 'false') {
    problems.push('LEO_REDIS_TLS must be true or false');
  }
  return { config: { ...config, tls: config.tls === 'true' }, problems };
}

const { config, problems } = readConfig(process.env);
if (problems.length > 0) {
  process.stderr.write(
    `The adapter cannot start: ${problems.join('; ')}.\n` +
      'Set them from the credential leo issued for the agency ' +
      '(docs/adapters.md, "Your first adapter in ten minutes").\n',
  );
  process.exit(2);
}

// ---- Logging --------------------------------------------------------------------------------
//
// JSON lines, pino's signature (fields, message): what the SDK logs goes here too. Information
// on stdout, warnings and errors on stderr. Never pass a fact's value in the fields.
const write = (stream, level) => (fields, message) => {
  stream.write(
    `${JSON.stringify({ level, time: new Date().toISOString(), ...fields, msg: message })}\n`,
  );
};
const log = {
  info: write(process.stdout, 'info'),
  warn: write(process.stderr, 'warn'),
  error: write(process.stderr, 'error'),
};

// ---- The register ---------------------------------------------------------------------------
//
// Delivery is at least once: a step can arrive again (a retry, a redelivery, leo's reconciler),
// always with the same idempotency key, and must then get the same answer and make no second
// registration. This example keeps its answers in memory, in a Map, so it forgets them when it
// restarts: a real adapter records the key with the effect in its own database, in the same
// transaction, under a unique constraint (docs/adapters.md, "Delivery is at least once").
const answers = new Map(); // idempotency key → Promise of the step's outcome

/** Runs `effect` once per key; a repeat (even one arriving while the first runs) shares its answer. */
function once(key, effect) {
  let answer = answers.get(key);
  if (answer === undefined) {
    answer = effect();
    answers.set(key, answer);
    // A failed effect is not an answer: the next delivery tries again.
    answer.catch(() => answers.delete(key));
  }
  return answer;
}

/** A new owner registration number, JV-<year>-<six digits>. (A real register would number them in sequence.) */
function newOwnerRegistrationNumber() {
  return `JV-${new Date().getFullYear()}-${String(randomInt(0, 1_000_000)).padStart(6, '0')}`;
}

/** Jordbruksverket's own case number for the registration, for the citizen to quote. */
function newReference() {
  return `JVD-${new Date().getFullYear()}-${randomBytes(4).toString('hex').toUpperCase()}`;
}

/** Refuses an application lacking what the action needs; the reason names no value. */
const incomplete = (reason) => ({ outcome: 'rejected', code: 'incomplete-application', reason });

// ---- The actions ----------------------------------------------------------------------------

/**
 * register-dog-owner: registers the person as the owner of a dog. The job carries exactly the
 * facts the step needs (person.personalNumber, in leo's form of 12 digits, and dog.name); the
 * answer carries exactly the facts it produces (dog.ownerRegistrationNumber).
 */
async function registerDogOwner(job, { log: jobLog }) {
  const personalNumber = job.facts['person.personalNumber'];
  const dogName = job.facts['dog.name'];
  if (typeof personalNumber !== 'string' || !/^\d{12}$/.test(personalNumber)) {
    return incomplete('the application lacks a valid personal identity number');
  }
  if (typeof dogName !== 'string' || dogName.trim() === '' || dogName.length > 100) {
    return incomplete("the application lacks the dog's name");
  }
  return once(job.idempotencyKey, async () => {
    // Here a real adapter writes to its register (and passes `signal` to its calls).
    jobLog.info({}, 'registering the dog owner');
    return {
      outcome: 'completed',
      produced: { 'dog.ownerRegistrationNumber': newOwnerRegistrationNumber() },
      reference: newReference(),
    };
  });
}

// ---- The worker -----------------------------------------------------------------------------

const adapter = createAgencyWorker({
  agency: config.agency,
  connection: {
    host: config.host,
    port: config.port,
    db: config.db,
    username: config.username,
    password: config.password,
    ...(config.tls ? { tls: {} } : {}),
    // Answers go out on the worker's connection: let its commands wait for a reconnection.
    maxRetriesPerRequest: null,
  },
  prefix: config.prefix,
  handlers: {
    'register-dog-owner': async (job, context) => {
      const outcome = await registerDogOwner(job, context);
      context.log.info({ outcome: outcome.outcome, reference: outcome.reference }, 'answered');
      return outcome;
    },
  },
  // leo cancelled the case while a step was in flight. Registrations here complete at once, so
  // there is nothing left to withdraw; an adapter whose applications wait for a decision would
  // withdraw the application it recorded under `job.idempotencyKey`.
  onCancel: async (job, { log: cancelLog }) => {
    cancelLog.info(
      {},
      answers.has(job.idempotencyKey)
        ? 'cancelled after the registration: nothing to withdraw'
        : 'cancelled before any registration',
    );
  },
  // Redis refuses this credential the agency's queue (another agency's credential, a prefix that
  // is not leo's): retrying cannot help. Exit with an error, so a supervisor restarts the adapter
  // and someone is told.
  onFatal: () => {
    log.error({ agency: config.agency }, 'the adapter has stopped for good: see the error above');
    process.exit(1);
  },
  log,
});

// ---- Start and stop -------------------------------------------------------------------------

let stopping = false;

/** On SIGTERM or Ctrl-C: take no new job, let those in flight finish and answer, disconnect. */
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping: finishing the jobs in flight');
  try {
    await adapter.close();
  } catch (error) {
    log.error(describeHandlerError(error), 'closing the worker failed');
    process.exit(1);
  }
  log.info({}, 'stopped');
  process.exit(0);
}
process.once('SIGTERM', () => void stop('SIGTERM'));
process.once('SIGINT', () => void stop('SIGINT'));

/**
 * Says once that the adapter is connected to Redis with its credential and serving. (A wrong
 * password or an unreachable Redis is retried; the SDK logs once a minute what to check.)
 */
async function announceReady() {
  try {
    await adapter.worker.waitUntilReady();
  } catch (error) {
    if (stopping) return; // stop() exits
    log.error(describeHandlerError(error), 'the worker could not start');
    process.exit(1);
  }
  if (stopping) return;
  log.info(
    { agency: config.agency, queue: `agency.${config.agency}`, prefix: config.prefix },
    `the ${config.agency} adapter is ready: it serves register-dog-owner`,
  );
}
void announceReady();
