/**
 * `npm run demo`: one test citizen through three life events against a running leo (LEO_URL,
 * default http://localhost:3000, with development tokens on, as under `npm start`): move house,
 * then start a business, then become a parent. For each it prints what was asked, reused and
 * looked up, and what each agency received; at the end the citizen's disclosure log.
 */

const BASE = (process.env.LEO_URL ?? 'http://localhost:3000').replace(/\/$/, '');
/** A test personal identity number (Skatteverket's test numbers have birth numbers 980–999). */
const CITIZEN = process.env.DEMO_PERSONAL_NUMBER ?? '198507099805';

const inDays = (days: number): string =>
  new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);

/** What the citizen answers, should they be asked: the demo answers only what leo asks. */
const ANSWERS: Record<string, unknown> = {
  // The demo citizen is registered in Uppsala; they move to Göteborg (another municipality).
  'move.newAddress': { street: 'Linnégatan 12', postalCode: '413 04', town: 'Göteborg' },
  'move.date': inDays(7),
  'move.apartmentNumber': '1102',
  'business.name': 'Kaffe & Kod',
  'business.legalForm': 'enskild-naringsidkare',
  'business.sniCode': '62010',
  'business.expectedTurnover': 500000,
  'business.willEmployStaff': true,
  'business.servesFood': false,
  'business.servesAlcohol': false,
  'person.bankAccount': { kind: 'swedish', account: '8424-4, 983 189 224-6' },
  'child.preschoolStartDate': inDays(400),
  'parentalBenefit.period': { from: inDays(14), to: inDays(120) },
  'parentalBenefit.extent': 'full',
};

interface FactStatus {
  key: string;
  status: string;
  agency?: string;
  caseId?: string;
}
interface CaseView {
  id: string;
  status: string;
  resolution?: { state: string; questions: Array<{ key: string }>; facts: FactStatus[] };
  steps: Array<{ stepId: string; agency: string; state: string; agencyReference: string | null }>;
}
interface Preview {
  checksum: string;
  agencies: Array<{
    agency: string;
    steps: Array<{
      stepId: string;
      facts: Array<{ key: string; source: { kind: string; reused?: boolean; agency?: string } }>;
    }>;
  }>;
}

let token = '';

async function api(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

async function must<T>(
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
): Promise<T> {
  const { status, body: answer } = await api(method, path, body, headers);
  if (status >= 400)
    throw new Error(`${method} ${path}: ${String(status)} ${JSON.stringify(answer)}`);
  return answer as T;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const pad = (text: string, width: number): string => text.padEnd(width);

async function lifeEvent(key: string): Promise<void> {
  console.log(`\n=== ${key} ===`);
  let view = await must<CaseView>(
    'POST',
    '/v1/cases',
    { lifeEvent: key, answers: {} },
    { prefer: 'wait=10' },
  );
  const asked = new Set<string>();
  while (view.resolution?.state !== 'ready') {
    if (view.resolution?.state === 'resolving') {
      await sleep(200);
      view = await must<CaseView>('GET', `/v1/cases/${view.id}`);
      continue;
    }
    const questions = view.resolution?.questions.map((q) => q.key) ?? [];
    const answers = Object.fromEntries(questions.map((k) => [k, ANSWERS[k]]));
    const missing = questions.filter((k) => ANSWERS[k] === undefined);
    if (missing.length > 0) throw new Error(`the demo has no answer for ${missing.join(', ')}`);
    for (const k of questions) asked.add(k);
    view = await must<CaseView>('POST', `/v1/cases/${view.id}/answers`, { answers });
  }
  const facts = view.resolution.facts;
  const reused = facts.filter((f) => f.status === 'reused' || f.status === 'from-e-identification');
  const lookedUp = facts.filter((f) => f.status === 'looked-up');
  console.log(`asked ${String(asked.size)}: ${[...asked].join(', ') || '-'}`);
  console.log(`reused ${String(reused.length)}: ${reused.map((f) => f.key).join(', ') || '-'}`);
  console.log(
    `looked up ${String(lookedUp.length)}: ${lookedUp.map((f) => `${f.key} (${f.agency ?? '?'})`).join(', ') || '-'}`,
  );

  const preview = await must<Preview>('GET', `/v1/cases/${view.id}/preview`);
  console.log('what each agency will receive:');
  for (const agency of preview.agencies) {
    for (const step of agency.steps) {
      const received = step.facts.map((f) =>
        f.source.kind === 'will-be-produced' ? `${f.key} (from ${f.source.agency ?? '?'})` : f.key,
      );
      console.log(`  ${pad(agency.agency, 20)} ${pad(step.stepId, 26)} ${received.join(', ')}`);
    }
  }
  await must('POST', `/v1/cases/${view.id}/submit`, { previewChecksum: preview.checksum });
  const deadline = Date.now() + 120_000;
  while (!['completed', 'failed', 'cancelled', 'action-required'].includes(view.status)) {
    if (Date.now() > deadline) throw new Error(`${key} did not finish in two minutes`);
    await sleep(500);
    view = await must<CaseView>('GET', `/v1/cases/${view.id}`);
  }
  console.log(`case ${view.status}:`);
  for (const step of view.steps) {
    console.log(`  ${pad(step.stepId, 26)} ${pad(step.state, 10)} ${step.agencyReference ?? ''}`);
  }
}

async function main(): Promise<void> {
  const issued = await must<{ accessToken: string }>('POST', '/v1/dev/token', {
    role: 'citizen',
    personalNumber: CITIZEN,
  });
  token = issued.accessToken;
  for (const key of ['move-house', 'start-business', 'become-parent']) await lifeEvent(key);

  const log = await must<{
    disclosures: Array<{
      at: string;
      agency: string;
      lifeEvent: string;
      stepId: string | null;
      purpose: string;
      basis: string;
      factKeys: string[];
    }>;
  }>('GET', '/v1/me/disclosures?limit=200');
  console.log('\n=== who has seen my data (newest first) ===');
  for (const d of log.disclosures) {
    console.log(
      `${d.at.slice(0, 19)}  ${pad(d.agency, 20)} ${pad(d.lifeEvent, 15)} ${pad(d.stepId ?? `(${d.purpose})`, 26)} ${pad(d.basis, 8)} ${d.factKeys.join(', ')}`,
    );
  }
  const messages = await must<{ messages: Array<{ subject: { en: string } }> }>(
    'GET',
    '/v1/me/messages?limit=200',
  );
  console.log(
    `\n${String(messages.messages.length)} messages; the latest: ${messages.messages[0]?.subject.en ?? '-'}`,
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  if (error instanceof TypeError)
    console.error(`Is leo running at ${BASE}? Start it with npm start.`);
  process.exit(1);
});
