import { ParseIntPipe } from '@nestjs/common';
import { DomainError } from '../common/domain-error.js';

/** A version in a path: a positive integer, or a 400 naming the parameter. */
export const VersionParam = new ParseIntPipe({
  exceptionFactory: () =>
    new DomainError('invalid', 'validation-failed', 'The version must be a positive integer.', [
      { path: 'version', reason: 'must be a positive integer' },
    ]),
});
