import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { DomainError, type FieldProblem } from './domain-error.js';

/** Flattens class-validator's tree into one problem per failed constraint, with a dotted path. */
export function fieldProblems(errors: ValidationError[], parent = ''): FieldProblem[] {
  return errors.flatMap((error) => {
    const path = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.entries(error.constraints ?? {}).map(([code, reason]) => ({
      path,
      reason: code === 'whitelistValidation' ? 'is not a known field' : reason,
      code,
    }));
    return [...own, ...fieldProblems(error.children ?? [], path)];
  });
}

/**
 * The validation pipe every route uses: unknown fields are refused (not silently dropped, so a
 * misspelt field is reported), values are transformed to the DTO's types, and every problem is
 * reported at once with its field path.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => {
      const problems = fieldProblems(errors);
      return new DomainError(
        'invalid',
        'validation-failed',
        `The request has ${problems.length} invalid field${problems.length === 1 ? '' : 's'}: ${problems
          .map((p) => p.path)
          .filter((p, i, all) => all.indexOf(p) === i)
          .join(', ')}.`,
        problems,
      );
    },
  });
}
