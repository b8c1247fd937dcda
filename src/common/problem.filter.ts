import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { isDatabaseUnavailable, sqlStateOf } from './database-error.js';
import { LogBudget } from './log-budget.js';
import { DomainError, type ErrorKind, type FieldProblem } from './domain-error.js';

const STATUS_BY_KIND: Record<ErrorKind, number> = {
  invalid: HttpStatus.BAD_REQUEST,
  unauthenticated: HttpStatus.UNAUTHORIZED,
  forbidden: HttpStatus.FORBIDDEN,
  'not-found': HttpStatus.NOT_FOUND,
  conflict: HttpStatus.CONFLICT,
  unprocessable: HttpStatus.UNPROCESSABLE_ENTITY,
  unavailable: HttpStatus.SERVICE_UNAVAILABLE,
};

/**
 * Database errors only client input can cause, by SQLSTATE: a backstop behind validation,
 * answered 4xx with fixed text (the database's own message quotes the offending value).
 */
const INVALID_INPUT = 'invalid-input';
const CONFLICT = 'conflict';
const CLIENT_DATABASE_ERRORS: Readonly<Record<string, typeof INVALID_INPUT | typeof CONFLICT>> = {
  '22P05': INVALID_INPUT, // untranslatable character
  '22021': INVALID_INPUT, // invalid byte sequence (e.g. a NUL character)
  '22003': INVALID_INPUT, // numeric value out of range
  '22P02': INVALID_INPUT, // invalid text representation (not a uuid, not a number)
  '54001': INVALID_INPUT, // statement too complex (e.g. a huge list)
  '23001': CONFLICT, // restrict violation: still in use
  '23505': CONFLICT, // unique violation: already there
};

/** How long a client is asked to wait when the database is unavailable, in seconds. */
const RETRY_AFTER_S = 5;

const UNAVAILABLE_PROBLEM = (): Problem => ({
  type: 'urn:leo:problem:database-unavailable',
  title: 'Service Unavailable',
  status: 503,
  code: 'database-unavailable',
  detail: 'leo cannot reach its database just now; try again shortly.',
});

/** An RFC 9457 problem document, leo's one error shape. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  errors?: FieldProblem[];
  requestId?: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function codeForStatus(status: number): string {
  return (TITLES[status] ?? 'error').toLowerCase().replace(/ /g, '-');
}

/** Body-parser errors (bad JSON, too large) arrive as plain errors carrying a status. */
interface ParserError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
}

/**
 * Maps every error to a problem document. Domain errors keep their code and field problems;
 * anything unexpected is a 500 whose detail reveals nothing, logged with the request id.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemFilter');
  private readonly unavailableLogs = new LogBudget(1, 10_000);

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const response = http.getResponse<Response>();
    // Outside an HTTP context there is no request. Its id is set by pino-http's genReqId (see
    // loggerParams), which always returns a string.
    const request = http.getRequest<(Request & { id?: string }) | undefined>();
    const sqlState = sqlStateOf(exception);
    const clientDatabaseError =
      sqlState === undefined ? undefined : CLIENT_DATABASE_ERRORS[sqlState];
    const unavailable = !clientDatabaseError && isDatabaseUnavailable(exception);
    const problem = clientDatabaseError
      ? this.databaseProblem(clientDatabaseError)
      : unavailable
        ? UNAVAILABLE_PROBLEM()
        : this.toProblem(exception);
    if (request?.id !== undefined) problem.requestId = request.id;
    if (unavailable) {
      // A fault of ours the client can only wait out: one line per window, not one per request.
      const budget = this.unavailableLogs.take('database');
      if (budget.log) {
        this.logger.warn(
          { err: exception, alsoHeld: budget.held },
          'the database is unavailable: answering 503',
        );
      }
    } else if (problem.status >= 500) {
      // `err` goes through the allow-list serializer (observability/logging.ts): a database
      // error is logged with its SQLSTATE and a scrubbed message, never its query or values.
      this.logger.error({ err: exception, requestId: problem.requestId }, 'unhandled error');
    } else if (clientDatabaseError) {
      // Validation should have refused the input before the database did: worth a look.
      this.logger.warn({ sqlState, requestId: problem.requestId }, 'database refused client input');
    }
    if (response.headersSent) return;
    if (problem.status === 401) response.setHeader('WWW-Authenticate', 'Bearer');
    if (unavailable) response.setHeader('Retry-After', String(RETRY_AFTER_S));
    response.status(problem.status).type('application/problem+json').json(problem);
  }

  private databaseProblem(code: typeof INVALID_INPUT | typeof CONFLICT): Problem {
    const status = code === CONFLICT ? HttpStatus.CONFLICT : HttpStatus.BAD_REQUEST;
    return {
      type: `urn:leo:problem:${code}`,
      title: TITLES[status] ?? 'Error',
      status,
      code,
      detail:
        code === CONFLICT
          ? 'The request conflicts with what exists: it is already there, or still in use.'
          : 'The request contains a value that cannot be stored or compared.',
    };
  }

  private toProblem(exception: unknown): Problem {
    if (exception instanceof DomainError) {
      const status = STATUS_BY_KIND[exception.kind];
      return {
        type: `urn:leo:problem:${exception.code}`,
        title: TITLES[status] ?? 'Error',
        status,
        code: exception.code,
        detail: exception.message,
        ...(exception.problems.length > 0 ? { errors: [...exception.problems] } : {}),
      };
    }
    // Body-parser errors (bad JSON, too large), which the Express adapter may wrap: answered
    // with fixed text, since a parser message can quote the body.
    const parser = (exception instanceof HttpException ? exception.cause : exception) as
      ParserError | undefined;
    const parserStatus = parser?.status ?? parser?.statusCode;
    if (typeof parserStatus === 'number' && parserStatus >= 400 && parserStatus < 500) {
      const code =
        parser?.type === 'entity.parse.failed' ? 'malformed-json' : codeForStatus(parserStatus);
      const detail =
        code === 'malformed-json'
          ? 'The request body is not valid JSON.'
          : parserStatus === 413
            ? 'The request body is too large.'
            : (TITLES[parserStatus] ?? 'The request was refused.');
      return {
        type: `urn:leo:problem:${code}`,
        title: TITLES[parserStatus] ?? 'Error',
        status: parserStatus,
        code,
        detail,
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      // Typed `string | object`, but it is whatever the exception was constructed with.
      const body: unknown = exception.getResponse();
      const message =
        typeof body === 'string'
          ? body
          : typeof body === 'object' && body !== null && 'message' in body
            ? String(body.message)
            : exception.message;
      const code = codeForStatus(status);
      return {
        type: `urn:leo:problem:${code}`,
        title: TITLES[status] ?? 'Error',
        status,
        code,
        detail: message,
      };
    }
    return {
      type: 'urn:leo:problem:internal',
      title: TITLES[500] ?? 'Internal Server Error',
      status: 500,
      code: 'internal',
      detail: 'Something went wrong on our side. Quote the request id when reporting it.',
    };
  }
}
