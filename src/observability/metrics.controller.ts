import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/access.decorator.js';
import { Metrics } from './metrics.js';

/**
 * Served by every role, like health: each replica reports itself. Public like health too, since
 * Prometheus scrapes without a token; the metrics carry no personal data or ids, but they do show
 * how busy leo is, so deployments expose the path only to their monitoring network
 * (docs/operating.md).
 */
@ApiTags('operations')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: Metrics) {}

  @Get()
  @Public()
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Prometheus metrics of this process (text exposition format)',
    description:
      'Cases, steps, result application, HTTP requests, queue depths, outbox lag and process ' +
      'metrics, all prefixed `leo_`. Queue and database gauges are read at scrape time, at most ' +
      'every 2 s. Names and labels are described in docs/operating.md.',
  })
  @ApiProduces('text/plain; version=0.0.4; charset=utf-8')
  @ApiOkResponse({ description: 'The exposition.', schema: { type: 'string' } })
  async scrape(@Res({ passthrough: true }) response: Response): Promise<string> {
    const { contentType, body } = await this.metrics.render();
    response.type(contentType);
    return body;
  }
}
