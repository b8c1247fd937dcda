/**
 * The number of partitions cases are spread over (docs/decisions/0020-partitions.md): fixed
 * once, by the migration that made their lease rows (EnginePartitions). The engine owns them;
 * the metrics read each one's results stream.
 */
export const PARTITION_COUNT = 32;
