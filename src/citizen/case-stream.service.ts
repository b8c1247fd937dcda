import { Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { CaseSignals } from '../engine/case-signals.js';
import { EngineRepository } from '../engine/engine.repository.js';
import { FINAL_CASE_STATUSES } from '../engine/engine.types.js';
import { CitizenRepository } from './citizen.repository.js';

/** Events after which a case may have finished (a failed step can fail the case). */
const MAY_FINISH: ReadonlySet<string> = new Set([
  'case-completed',
  'case-cancelled',
  'step-failed',
]);

/** Comments keep proxies from closing an idle stream; re-reads catch a lost signal. */
const HEARTBEAT_MS = 15_000;

/**
 * Server-sent events of one case: its history from `Last-Event-ID` on, then each new event as
 * it is committed (woken by CaseSignals, from whichever replica made the change), ending once
 * the case has finished. Events carry ids, codes and states, never fact values.
 */
@Injectable()
export class CaseStreamService {
  constructor(
    private readonly repository: CitizenRepository,
    private readonly engineRepository: EngineRepository,
    private readonly signals: CaseSignals,
  ) {}

  async stream(
    caseId: string,
    afterSeq: number,
    request: Request,
    response: Response,
  ): Promise<void> {
    response.status(200);
    response.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    response.setHeader('Cache-Control', 'no-cache, no-transform');
    response.setHeader('Connection', 'keep-alive');
    response.setHeader('X-Accel-Buffering', 'no');
    response.flushHeaders();

    let last = afterSeq;
    // Flags changed by callbacks: an object, so the compiler does not narrow them away.
    const flags = { closed: false, reading: false, again: false };
    const more = (): boolean => flags.again && !flags.closed;
    const stop = (): void => {
      if (flags.closed) return;
      flags.closed = true;
      clearInterval(heartbeat);
      unlisten();
      response.end();
    };
    const pump = async (): Promise<void> => {
      if (flags.reading) {
        flags.again = true;
        return;
      }
      flags.reading = true;
      try {
        do {
          flags.again = false;
          const events = await this.repository.eventsAfter(caseId, last);
          for (const event of events) {
            if (flags.closed) return;
            response.write(
              `id: ${String(event.seq)}\nevent: ${event.type}\ndata: ${JSON.stringify({
                seq: event.seq,
                type: event.type,
                stepId: event.stepId,
                data: event.data,
                at: event.createdAt.toISOString(),
              })}\n\n`,
            );
            last = event.seq;
          }
          // Whether the case has finished is asked when nothing new came, and right after an
          // event that may have finished it: else the end waited for the next wake-up (the
          // keep-alive, 15 s later) once the last events were sent.
          if (events.length === 0 || events.some((e) => MAY_FINISH.has(e.type))) {
            const record = await this.engineRepository.findCase(caseId);
            if (record && FINAL_CASE_STATUSES.includes(record.status) && last >= record.revision) {
              response.write(`event: end\ndata: ${JSON.stringify({ status: record.status })}\n\n`);
              stop();
              return;
            }
          }
        } while (more());
      } catch {
        stop();
      } finally {
        flags.reading = false;
      }
    };
    const unlisten = this.signals.listen(caseId, () => {
      void pump();
    });
    const heartbeat = setInterval(() => {
      if (!flags.closed) response.write(': keep-alive\n\n');
      void pump();
    }, HEARTBEAT_MS);
    request.on('close', stop);
    await pump();
  }
}
