/**
 * Domain code throws these, never HTTP exceptions: a stable machine-readable code, a message
 * safe to show a client (no personal data), and optional field problems. The HTTP layer maps
 * each kind to a status in one place (ProblemFilter).
 */
export type ErrorKind =
  | 'invalid' // 400: the request is malformed
  | 'unauthenticated' // 401
  | 'forbidden' // 403
  | 'not-found' // 404
  | 'conflict' // 409: the state does not allow it (stale preview, already published)
  | 'unprocessable' // 422: well-formed but refused (a definition with errors)
  | 'unavailable'; // 503: a service leo depends on (the identity provider) does not answer

export interface FieldProblem {
  /** Where: a dotted path into the request body (`address.postalCode`, `steps.2.needs`). */
  path: string;
  /** Why, for a person reading it. */
  reason: string;
  /** A stable code for the reason, where there is one. */
  code?: string;
}

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly problems: readonly FieldProblem[] = [],
    /** `cause`: what went wrong underneath, for the logs (never shown to the client). */
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'DomainError';
  }
}
