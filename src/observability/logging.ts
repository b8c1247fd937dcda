import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import { pino, type Logger, type LoggerOptions } from 'pino';
import type { LogLevel } from '../config/config.schema.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * One JSON log format for the whole process: level as a word, ISO time, service and role on
 * every line. Nothing personal is logged: no bodies, no query strings (they may carry
 * identifiers), no headers (authorization, cookies).
 */
export function pinoOptions(level: LogLevel, role: string): LoggerOptions {
  return {
    level,
    base: { service: 'leo', role },
    messageKey: 'msg',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: ['req.headers', 'res.headers', '*.personalNumber', '*.password', '*.authorization'],
      remove: true,
    },
  };
}

export function createRootLogger(level: LogLevel, role: string): Logger {
  return pino(pinoOptions(level, role));
}

/** nestjs-pino parameters: HTTP request logs with a request id, sharing the root logger. */
export function loggerParams(logger: Logger): Params {
  return {
    pinoHttp: {
      logger,
      genReqId: (req: IncomingMessage, res: ServerResponse) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('x-request-id', id);
        return id;
      },
      autoLogging: { ignore: (req: IncomingMessage) => (req.url ?? '').startsWith('/health') },
      customLogLevel: (_req, res, error) =>
        error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
      serializers: {
        req: (req: IncomingMessage & { id?: unknown }) => ({
          id: req.id,
          method: req.method,
          path: (req.url ?? '').split('?')[0],
        }),
        res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
      },
    },
  };
}
