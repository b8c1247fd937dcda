import { RESULT_PARTITIONS } from '#agency-contract';

/**
 * The number of partitions cases are spread over (docs/decisions/0020-partitions.md): fixed
 * once, by the migration that made their lease rows (EnginePartitions). The engine owns them;
 * the metrics read each one's results stream; the SDK answers on one of their streams.
 */
export const PARTITION_COUNT = RESULT_PARTITIONS;
