/**
 * A job contract maps each job name on a queue to the type of its payload. Producers and workers
 * are typed by the same map, so a payload cannot drift from its handler, and a worker must
 * handle every job name of its queue (see `JobHandlers`).
 */
export type JobContract<C> = { [N in keyof C]: object };

export type JobName<C> = Extract<keyof C, string>;

/** One handler per job name: the compiler refuses a missing one, the object shape a second one. */
export type JobHandlers<C extends JobContract<C>, Context, Result = unknown> = {
  [N in JobName<C>]: (payload: C[N], context: Context) => Promise<Result>;
};
