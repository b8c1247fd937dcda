import { ApiServiceUnavailableResponse } from '@nestjs/swagger';

/**
 * The 503 of a request that changes a case: the engine that owns the case (decision 0020) did
 * not take it within LEO_COMMAND_TIMEOUT_MS (no engine running, or its partition moving for
 * longer than that). Nothing was changed that a retry would change twice.
 */
export const ApiEngineUnavailable = (): MethodDecorator & ClassDecorator =>
  ApiServiceUnavailableResponse({
    description:
      'engine-unavailable: no engine took the request in time (none running, or the case moving between engines); try again shortly',
  });
