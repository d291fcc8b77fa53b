/**
 * Requests to a worker (a thread or a process), each answered once, in any order, with events
 * on the way: one small typed channel instead of a pending map, ids and failure handling
 * written again for each worker. The worker answers with `answerRequests`; when it dies, every
 * request still waiting fails with the reason.
 */
import type { ChildProcess } from 'node:child_process';
import type { MessagePort, Worker } from 'node:worker_threads';

/** The worker as the channel uses it: a thread (`threadEndpoint`) or a process (`processEndpoint`). */
export interface Endpoint {
  post(message: unknown, transfer: ArrayBuffer[]): void;
  onMessage(handle: (message: unknown) => void): void;
  /** Called once when the worker is gone: crashed, exited or killed. */
  onExit(handle: (error: Error) => void): void;
  /** Stops the worker at once. */
  terminate(): Promise<void>;
}

/** A worker thread. */
export function threadEndpoint(worker: Worker): Endpoint {
  return {
    post: (message, transfer) => worker.postMessage(message, transfer),
    onMessage: (handle) => worker.on('message', handle),
    onExit(handle) {
      worker.on('error', handle);
      worker.on('exit', (code) => handle(new Error(`the worker thread exited (code ${code})`)));
    },
    terminate: async () => void (await worker.terminate()),
  };
}

/** A child process with an IPC channel (messages as JSON: no buffers move). */
export function processEndpoint(child: ChildProcess, name: string): Endpoint {
  return {
    post: (message) => child.send(message as object),
    onMessage: (handle) => child.on('message', handle),
    onExit(handle) {
      child.on('error', handle);
      child.on('exit', (code, signal) => handle(new Error(`${name} stopped (${signal ?? `exit code ${code}`})`)));
    },
    terminate: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** An error as it crosses to the other side: its sentence, its class's name, and a reason some errors carry. */
export interface RemoteError {
  message: string;
  name: string;
  reason?: string;
}

/** What the worker sends: an event of a request, its answer, its failure, or a line for the log. */
type FromWorker<Response, Event> =
  | { id: number; event: Event }
  | { id: number; response: Response }
  | { id: number; error: RemoteError }
  | { log: string };

interface ToWorker<Request> {
  id: number;
  request: Request;
}


export interface ChannelOptions<Event> {
  /** The error a request rejects with, from what the worker sent (default: an Error with its message). */
  decodeError?: (error: RemoteError) => Error;
  /** Lines the worker logs. */
  onLog?: (line: string) => void;
  /** Events of requests sent without their own handler. */
  onEvent?: (event: Event) => void;
}

interface Waiting<Response, Event> {
  resolve: (response: Response) => void;
  reject: (error: Error) => void;
  onEvent?: (event: Event) => void;
}

export class Channel<Request, Response, Event = never> {
  private readonly waiting = new Map<number, Waiting<Response, Event>>();
  private nextId = 0;
  private dead: Error | null = null;

  constructor(
    private readonly worker: Endpoint,
    private readonly options: ChannelOptions<Event> = {},
  ) {
    worker.onMessage((message) => this.receive(message as FromWorker<Response, Event>));
    worker.onExit((error) => this.fail(error));
  }

  /** Whether the worker is gone (its requests failed). */
  get closed(): boolean {
    return this.dead !== null;
  }

  /** Sends a request (its buffers in `transfer` move to the worker); resolves with the answer. */
  request(request: Request, options: { transfer?: ArrayBuffer[]; onEvent?: (event: Event) => void } = {}): Promise<Response> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, onEvent: options.onEvent });
      const envelope: ToWorker<Request> = { id, request };
      this.worker.post(envelope, options.transfer ?? []);
    });
  }

  /** Stops the worker at once; requests still waiting fail with `reason`. */
  async close(reason: Error = new Error('the worker was closed')): Promise<void> {
    this.fail(reason);
    await this.worker.terminate();
  }

  private receive(message: FromWorker<Response, Event>): void {
    if ('log' in message) {
      this.options.onLog?.(message.log);
      return;
    }
    const waiting = this.waiting.get(message.id);
    if (!waiting) return;
    if ('event' in message) {
      (waiting.onEvent ?? this.options.onEvent)?.(message.event);
      return;
    }
    this.waiting.delete(message.id);
    if ('response' in message) waiting.resolve(message.response);
    else waiting.reject(this.options.decodeError?.(message.error) ?? Object.assign(new Error(message.error.message), { name: message.error.name }));
  }

  private fail(error: Error): void {
    this.dead ??= error;
    for (const { reject } of this.waiting.values()) reject(error);
    this.waiting.clear();
  }
}

/** The side that sends the requests, as a worker sees it. */
export interface Parent {
  post(message: unknown, transfer: ArrayBuffer[]): void;
  onMessage(handle: (message: unknown) => void): void;
}

/** The thread that started this worker thread (its parentPort). */
export function parentThread(port: MessagePort): Parent {
  return { post: (message, transfer) => port.postMessage(message, transfer), onMessage: (handle) => port.on('message', handle) };
}

/** The process that started this one with an IPC channel. */
export function parentProcess(): Parent {
  return { post: (message) => process.send!(message), onMessage: (handle) => process.on('message', handle) };
}

/** An answer and the buffers that move with it. */
export interface Answer<Response> {
  value: Response;
  transfer?: ArrayBuffer[];
}

/**
 * The worker's side: answers each request with `handle`'s result, or with the error it throws
 * (`encodeError` says what crosses), sending `emit`'s events on the way. Requests are handled as
 * they come; a handler that must not overlap another serialises itself.
 */
export function answerRequests<Request, Response, Event = never>(
  parent: Parent,
  handle: (request: Request, emit: (event: Event) => void) => Promise<Answer<Response>>,
  encodeError: (error: unknown) => RemoteError = remoteError,
): { log(line: string): void } {
  const post = (message: FromWorker<Response, Event>, transfer: ArrayBuffer[] = []) => parent.post(message, transfer);
  parent.onMessage((message) => {
    const { id, request } = message as ToWorker<Request>;
    handle(request, (event) => post({ id, event })).then(
      ({ value, transfer }) => post({ id, response: value }, transfer),
      (error: unknown) => post({ id, error: encodeError(error) }),
    );
  });
  return { log: (line) => post({ log: line }) };
}

/** An error's sentence and class name; anything thrown that is not an Error, as text. */
export function remoteError(error: unknown): RemoteError {
  if (error instanceof Error) return { message: error.message, name: error.name, reason: (error as Error & { reason?: string }).reason };
  return { message: String(error), name: 'Error' };
}
