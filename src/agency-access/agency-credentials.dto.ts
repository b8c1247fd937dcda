import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches, MaxLength } from 'class-validator';

export class IssueCredentialDto {
  @ApiPropertyOptional({
    description: 'What the credential is for, e.g. the adapter and its environment. Not secret.',
    example: 'skatteverket adapter, production',
    maxLength: 100,
  })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  @Matches(/^[\p{L}\p{N} .,:/()_-]*$/u, {
    message: 'label may hold letters, digits, spaces and . , : / ( ) _ - only',
  })
  label?: string;
}

export class CredentialDto {
  @ApiProperty({ example: '3f9a0c12b7e4', description: 'The credential id (12 hex digits).' })
  id!: string;
  @ApiProperty({ example: 'skatteverket' }) agency!: string;
  @ApiProperty({
    example: 'leo-agency.5d41402a.skatteverket.3f9a0c12b7e4',
    description: 'The Redis user name the adapter connects as.',
  })
  username!: string;
  @ApiProperty({ type: String, nullable: true }) label!: string | null;
  @ApiProperty({ format: 'date-time' }) issuedAt!: string;
  @ApiProperty({ description: 'Who issued it (the administrator).' }) issuedBy!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) revokedAt!: string | null;
  @ApiProperty({ type: String, nullable: true }) revokedBy!: string | null;
}

export class RedisAddressDto {
  @ApiProperty({ example: '127.0.0.1' }) host!: string;
  @ApiProperty({ example: 6379 }) port!: number;
  @ApiProperty({ description: 'Whether Redis is reached over TLS (rediss://).' }) tls!: boolean;
  @ApiProperty({ example: 0, description: "leo's Redis database: the one the adapter selects." })
  db!: number;
}

export class IssuedCredentialDto extends CredentialDto {
  @ApiProperty({
    type: RedisAddressDto,
    description:
      'Redis as leo reaches it: the adapter connects there with this credential (or at the address its own network gives the same server).',
  })
  redis!: RedisAddressDto;
  @ApiProperty({
    description:
      'The password, shown this once: leo keeps only its SHA-256. Give it to the adapter as a secret.',
  })
  password!: string;
  @ApiProperty({ example: '{leo}', description: 'The key prefix the adapter must use.' })
  prefix!: string;
  @ApiProperty({ example: 'agency.skatteverket', description: 'The queue the adapter consumes.' })
  queue!: string;
  @ApiProperty({
    example: '{leo}:stream:agency.skatteverket.results',
    description: 'The stream the adapter answers on (the only key it may write outside its queue).',
  })
  resultsStream!: string;
}
