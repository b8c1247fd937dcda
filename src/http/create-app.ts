import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { AppModule, roleRuns } from '../app.module.js';
import type { ResolvedConfig } from '../config/config.schema.js';
import { BodyDepthInterceptor } from '../common/body-depth.interceptor.js';
import { ProblemFilter } from '../common/problem.filter.js';
import { createValidationPipe } from '../common/validation.js';

export function openApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('leo')
    .setDescription(
      'Life-event orchestrator: one case per life event, fanned out to the agencies involved. ' +
        'Errors are RFC 9457 problem documents with a stable `code` and, for invalid input, ' +
        'one entry per field in `errors`.',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    .addBasicAuth(
      {
        type: 'http',
        scheme: 'basic',
        description:
          "An agency credential leo issued (its Redis user name and password): the agency's routes only.",
      },
      'agency-credential',
    )
    .build();
  return SwaggerModule.createDocument(app, config);
}

/** Builds the Nest application for a role, configured exactly as it will serve. */
export async function createApp(
  config: ResolvedConfig,
  logger?: PinoLogger,
): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, logger), {
    bufferLogs: true,
    abortOnError: false,
  });
  app.useLogger(app.get(Logger));
  // Administrators author life events in YAML: accept it as text, parsed where it is used.
  app.useBodyParser('text', {
    type: ['application/yaml', 'application/x-yaml', 'text/yaml'],
    limit: '512kb',
  });
  app.useGlobalInterceptors(new BodyDepthInterceptor());
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ProblemFilter());
  const http = app.getHttpAdapter().getInstance();
  http.disable('x-powered-by');
  // Every API answer may carry personal data (a citizen's facts, cases, disclosures) or an
  // administrator's view of them: no cache, shared or private, keeps a copy.
  http.use(
    '/v1',
    (
      _request: unknown,
      response: { setHeader(name: string, value: string): void },
      next: () => void,
    ) => {
      response.setHeader('Cache-Control', 'no-store');
      next();
    },
  );
  if (roleRuns(config.role).api) {
    SwaggerModule.setup('docs', app, () => openApiDocument(app), { jsonDocumentUrl: 'docs-json' });
  }
  return app;
}
