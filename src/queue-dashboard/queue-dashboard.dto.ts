import { ApiProperty } from '@nestjs/swagger';

export class DashboardSessionDto {
  @ApiProperty({ example: '/admin/queues', description: 'Open this page in the same browser.' })
  path!: string;

  @ApiProperty({
    format: 'date-time',
    description:
      'When the session ends: 15 minutes after it was opened, or when the bearer token expires if sooner.',
  })
  expiresAt!: string;
}
