import { Queue, Worker, type Job } from 'bullmq';
import { redisOptions } from '../src/queue/redis-connection.js';

/**
 * The transport baseline, run as its own process by baseline.ts: the standard workload's DAG on
 * bare BullMQ, no Postgres. One queue per agency and a results queue; agency workers answer at
 * once; a coordinator enqueues B, C and D on A's result, F once all three are in, and counts F
 * as the case's completion. Job ids, retention and worker concurrency are leo's (agency workers
 * 8, results 16), and jobs carry the facts their step needs, so Redis does comparable work.
 *
 * Protocol with the parent over IPC: → ready; ← {run, cases, concurrency, tag}; → {done, …}; ← exit.
 */

type Step = 'A' | 'B' | 'C' | 'D' | 'F';
const AGENCY_OF: Record<Step, string> = {
  A: 'bolagsverket',
  B: 'skatteverket',
  C: 'skatteverket',
  D: 'skatteverket',
  F: 'kommun',
};
const NEEDS: Record<Step, Record<string, unknown>> = {
  A: {
    'person.name': { givenName: 'Anna', surname: 'Lindqvist' },
    'person.personalNumber': '200001019802',
    'business.name': 'Lindqvist Programutveckling',
    'business.legalForm': 'enskild-naringsidkare',
    'business.sniCode': '62010',
  },
  B: { 'business.orgNumber': '200001019802', 'business.expectedTurnover': 500000 },
  C: { 'business.orgNumber': '200001019802', 'business.expectedTurnover': 500000 },
  D: { 'business.orgNumber': '200001019802' },
  F: {
    'business.orgNumber': '200001019802',
    'person.address': { street: 'Storgatan 12', postalCode: '352 30', town: 'Växjö' },
  },
};
/** As leo's relay: an agency job is kept a minute after its answer. */
const KEEP_COMPLETED = { age: 60 };

interface StepData {
  caseId: string;
  step: Step;
  facts: Record<string, unknown>;
}
interface ResultData {
  caseId: string;
  step: Step;
}

type ParentMessage =
  { type: 'run'; tag: string; cases: number; concurrency: number } | { type: 'exit' };

const url = process.env.REDIS_URL;
if (!url) throw new Error('REDIS_URL is required');
const connection = redisOptions(url);
const prefix = '{bench}';
const send = (message: object): void => {
  process.send?.(message);
};

const agencyQueues = new Map<string, Queue>();
for (const agency of new Set(Object.values(AGENCY_OF))) {
  agencyQueues.set(agency, new Queue(`agency.${agency}`, { connection, prefix }));
}
const results = new Queue('results', { connection, prefix });

const enqueue = async (caseId: string, step: Step): Promise<void> => {
  const queue = agencyQueues.get(AGENCY_OF[step]) as Queue;
  await queue.add('step.execute', { caseId, step, facts: NEEDS[step] } satisfies StepData, {
    jobId: `${caseId}.${step}`,
    removeOnComplete: KEEP_COMPLETED,
  });
};

const workers: Worker[] = [];
for (const agency of agencyQueues.keys()) {
  workers.push(
    new Worker(
      `agency.${agency}`,
      async (job: Job<StepData>) => {
        const { caseId, step } = job.data;
        await results.add('step.result', { caseId, step } satisfies ResultData, {
          jobId: `${caseId}.${step}.result`,
          removeOnComplete: { age: 3_600 },
        });
        return { outcome: 'completed' };
      },
      { connection, prefix, concurrency: 8 },
    ),
  );
}

const fanIn = new Map<string, number>();
let onCompleted: (caseId: string) => void = () => undefined;
workers.push(
  new Worker(
    'results',
    async (job: Job<ResultData>) => {
      const { caseId, step } = job.data;
      if (step === 'A') {
        await Promise.all((['B', 'C', 'D'] as const).map((s) => enqueue(caseId, s)));
      } else if (step === 'F') {
        onCompleted(caseId);
      } else {
        const seen = (fanIn.get(caseId) ?? 0) + 1;
        if (seen === 3) {
          fanIn.delete(caseId);
          await enqueue(caseId, 'F');
        } else {
          fanIn.set(caseId, seen);
        }
      }
    },
    { connection, prefix, concurrency: 16 },
  ),
);

/** Starts `count` cases with at most `concurrency` enqueues in flight; resolves when all are done. */
async function run(tag: string, count: number, concurrency: number) {
  const completed = new Set<string>();
  let lastCompletionAt = 0;
  const done = new Promise<void>((resolve) => {
    onCompleted = (caseId) => {
      completed.add(caseId);
      lastCompletionAt = Date.now();
      if (completed.size === count) resolve();
    };
  });
  const startedAt = Date.now();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next;
      next += 1;
      await enqueue(`${tag}-${i}`, 'A');
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  await done;
  return { startedAt, lastCompletionAt, completed: completed.size };
}

process.on('message', (message: ParentMessage) => {
  if (message.type === 'run') {
    run(message.tag, message.cases, message.concurrency).then(
      (result) => {
        send({ type: 'done', ...result });
      },
      (error: unknown) => {
        send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
      },
    );
  } else {
    void Promise.all(workers.map((w) => w.close()))
      .then(() => Promise.all([...agencyQueues.values(), results].map((q) => q.close())))
      .finally(() => process.exit(0));
  }
});

void Promise.all(workers.map((w) => w.waitUntilReady())).then(() => {
  send({ type: 'ready' });
});
