import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Every call the benchmark makes to leo's public REST API, as a citizen front-end makes them:
 * the only module that knows the citizen API's contract (routes, headers, bodies, problem codes),
 * so adapting the benchmark to a change of the API is a change here alone.
 *
 * One keep-alive agent per client: connections are reused across cases, so the figure measures
 * leo and not TCP handshakes.
 */

/** The answers a citizen gives for the standard workload (name and address are looked up). */
export interface WorkloadAnswers {
  'business.name': string;
  'business.legalForm': 'enskild-naringsidkare';
  'business.sniCode': string;
  'business.expectedTurnover': number;
  'business.willEmployStaff': boolean;
  'business.servesFood': boolean;
  'business.servesAlcohol': boolean;
}

export function workloadAnswers(businessName: string): WorkloadAnswers {
  return {
    'business.name': businessName,
    'business.legalForm': 'enskild-naringsidkare',
    'business.sniCode': '62010',
    'business.expectedTurnover': 500_000,
    'business.willEmployStaff': true,
    'business.servesFood': false,
    'business.servesAlcohol': false,
  };
}

export const LIFE_EVENT = 'start-business';

/** How long the server may hold a create until the look-ups are back (`Prefer: wait=N`). */
const CREATE_WAIT_SECONDS = 10;
/** The pause before asking for a preview again while look-ups are pending. */
const PREVIEW_RETRY_MS = 20;
const PREVIEW_GIVE_UP_MS = 30_000;

export class ApiError extends Error {
  constructor(
    readonly operation: string,
    readonly status: number,
    readonly code: string | undefined,
    detail: string,
  ) {
    super(`${operation}: HTTP ${status}${code ? ` ${code}` : ''}: ${detail}`);
    this.name = 'ApiError';
  }
}

interface Response {
  status: number;
  body: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function problemCode(body: unknown): string | undefined {
  return isRecord(body) && typeof body.code === 'string' ? body.code : undefined;
}

function describe(body: unknown): string {
  if (isRecord(body) && typeof body.detail === 'string') return body.detail;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return text.slice(0, 200);
}

export interface CitizenFlowTimings {
  caseId: string;
  /** Client-side latency of each call, in milliseconds. */
  createMs: number;
  /** Until a preview came back (all retries while look-ups were pending included). */
  previewMs: number;
  previewRetries: number;
  submitMs: number;
  /** The resolution state the create answered with. */
  resolutionState: string;
}

/** A request lost on a kept-alive socket the server had just closed: unread, so safe to resend. */
class StaleSocketError extends Error {
  constructor(override readonly cause: Error) {
    super(`${cause.message} (on a reused socket)`);
  }
}

export class LeoClient {
  private readonly agent: http.Agent;
  private readonly base: URL;

  constructor(baseUrl: string, maxSockets: number) {
    this.base = new URL(baseUrl);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  close(): void {
    this.agent.destroy();
  }

  /**
   * One request; once more if it failed on a kept-alive socket before any answer came. The
   * server closes a socket idle for its keep-alive timeout (5 s), and a request written to it
   * just then is lost unread (`socket hang up` / `ECONNRESET` with `req.reusedSocket`): between
   * the phases every pooled socket has been idle that long, and a busy leo handles the timer
   * before the request that came in. An unread request changed nothing, so sending it again is
   * safe (what browsers do); a reset on a fresh socket is an error.
   */
  private async request(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    try {
      return await this.send(method, path, options);
    } catch (error) {
      if (!(error instanceof StaleSocketError)) throw error;
      return this.send(method, path, options);
    }
  }

  private send(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response> {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = http.request(
        {
          agent: this.agent,
          host: this.base.hostname,
          port: this.base.port,
          method,
          path,
          headers,
        },
        (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            if (/json/.test(res.headers['content-type'] ?? '') && text.length > 0) {
              try {
                body = JSON.parse(text) as unknown;
              } catch {
                body = text;
              }
            }
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      req.on('error', (error: NodeJS.ErrnoException) => {
        const unanswered = req.reusedSocket && !answered;
        const reset = error.code === 'ECONNRESET' || error.message === 'socket hang up';
        reject(unanswered && reset ? new StaleSocketError(error) : error);
      });
      req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${path}: no answer in 60 s`)));
      req.end(payload);
    });
  }

  /** `POST /v1/dev/token`: a citizen's bearer token (in production, the e-ID broker's job). */
  async citizenToken(personalNumber: string): Promise<string> {
    const res = await this.request('POST', '/v1/dev/token', {
      body: { role: 'citizen', personalNumber },
    });
    if (res.status !== 200 || !isRecord(res.body) || typeof res.body.accessToken !== 'string') {
      throw new ApiError('token', res.status, problemCode(res.body), describe(res.body));
    }
    return res.body.accessToken;
  }

  /** `POST /v1/cases` with `Prefer: wait=10`: answers once the look-ups are back (or after 10 s). */
  async createCase(
    token: string,
    answers: WorkloadAnswers,
  ): Promise<{ id: string; resolutionState: string }> {
    const res = await this.request('POST', '/v1/cases', {
      token,
      headers: { prefer: `wait=${CREATE_WAIT_SECONDS}` },
      body: { lifeEvent: LIFE_EVENT, answers },
    });
    if (res.status === 404 && problemCode(res.body) !== 'life-event-not-found') {
      throw new ApiError(
        'create',
        404,
        undefined,
        'this leo has no citizen API (POST /v1/cases): build a leo that has it',
      );
    }
    if (res.status !== 201 || !isRecord(res.body) || typeof res.body.id !== 'string') {
      throw new ApiError('create', res.status, problemCode(res.body), describe(res.body));
    }
    const resolution = res.body.resolution;
    const state =
      isRecord(resolution) && typeof resolution.state === 'string' ? resolution.state : 'unknown';
    return { id: res.body.id, resolutionState: state };
  }

  /**
   * `GET /v1/cases/{id}/preview`: the checksum to consent to, or `pending` while the look-ups
   * are not back (409 `resolution-pending`).
   */
  async preview(token: string, caseId: string): Promise<{ checksum: string } | 'pending'> {
    const res = await this.request('GET', `/v1/cases/${encodeURIComponent(caseId)}/preview`, {
      token,
    });
    if (res.status === 200 && isRecord(res.body) && typeof res.body.checksum === 'string') {
      return { checksum: res.body.checksum };
    }
    if (res.status === 409 && problemCode(res.body) === 'resolution-pending') return 'pending';
    throw new ApiError('preview', res.status, problemCode(res.body), describe(res.body));
  }

  /** `POST /v1/cases/{id}/submit` with the consented preview's checksum: 202. */
  async submit(token: string, caseId: string, previewChecksum: string): Promise<void> {
    const res = await this.request('POST', `/v1/cases/${encodeURIComponent(caseId)}/submit`, {
      token,
      body: { previewChecksum },
    });
    if (res.status !== 202) {
      throw new ApiError('submit', res.status, problemCode(res.body), describe(res.body));
    }
  }

  /** `GET /v1/cases/{id}`: the case's status (the bench reads completion from the database). */
  async caseStatus(token: string, caseId: string): Promise<string> {
    const res = await this.request('GET', `/v1/cases/${encodeURIComponent(caseId)}`, { token });
    if (res.status !== 200 || !isRecord(res.body) || typeof res.body.status !== 'string') {
      throw new ApiError('get case', res.status, problemCode(res.body), describe(res.body));
    }
    return res.body.status;
  }

  /** A citizen's read (`GET`): the body, or an ApiError for anything but 200. */
  private async read(operation: string, token: string, path: string): Promise<unknown> {
    const res = await this.request('GET', path, { token });
    if (res.status !== 200) {
      throw new ApiError(operation, res.status, problemCode(res.body), describe(res.body));
    }
    return res.body;
  }

  /** `GET /v1/cases`: the ids of the citizen's cases, newest first (the first page). */
  async listCases(token: string): Promise<string[]> {
    const body = await this.read('list cases', token, '/v1/cases');
    const cases = isRecord(body) && Array.isArray(body.cases) ? body.cases : [];
    return cases.map((c) => (isRecord(c) && typeof c.id === 'string' ? c.id : ''));
  }

  /** `GET /v1/cases/{id}`: the case's status and how many steps it shows. */
  async caseView(token: string, caseId: string): Promise<{ status: string; steps: number }> {
    const body = await this.read('get case', token, `/v1/cases/${encodeURIComponent(caseId)}`);
    return {
      status: isRecord(body) && typeof body.status === 'string' ? body.status : '',
      steps: isRecord(body) && Array.isArray(body.steps) ? body.steps.length : 0,
    };
  }

  /** `GET /v1/me/disclosures`, `/v1/me/messages`, `/v1/me/facts`: how many items the first page has. */
  async records(token: string, what: 'disclosures' | 'messages' | 'facts'): Promise<number> {
    const body = await this.read(what, token, `/v1/me/${what}`);
    const list = isRecord(body) ? body[what] : undefined;
    return Array.isArray(list) ? list.length : -1;
  }

  /** One citizen's errand: create the case with the answers, read the preview, submit it. */
  async citizenFlow(token: string, answers: WorkloadAnswers): Promise<CitizenFlowTimings> {
    let t = performance.now();
    const created = await this.createCase(token, answers);
    const createMs = performance.now() - t;
    if (created.resolutionState === 'needs-answers') {
      throw new ApiError('create', 201, 'needs-answers', 'leo asks for answers the workload gives');
    }
    t = performance.now();
    let retries = 0;
    let preview = await this.preview(token, created.id);
    while (preview === 'pending') {
      if (performance.now() - t > PREVIEW_GIVE_UP_MS) {
        throw new ApiError('preview', 409, 'resolution-pending', 'look-ups not back after 30 s');
      }
      retries += 1;
      await sleep(PREVIEW_RETRY_MS);
      preview = await this.preview(token, created.id);
    }
    const previewMs = performance.now() - t;
    t = performance.now();
    await this.submit(token, created.id, preview.checksum);
    return {
      caseId: created.id,
      createMs,
      previewMs,
      previewRetries: retries,
      submitMs: performance.now() - t,
      resolutionState: created.resolutionState,
    };
  }
}
