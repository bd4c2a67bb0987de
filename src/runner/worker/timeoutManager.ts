// Time slots for the running test (Playwright semantics): the test slot covers test-scoped fixture setup, hooks
// and the body; teardown gets a fresh slot of the same size; a fixture with its own `timeout` runs in its own
// slot while the enclosing one is paused. Work that misses its deadline is abandoned (it may keep running in
// the background), and the runner moves on to teardown.

export class TimeoutError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'TimeoutError'
  }
}

/** Thrown into the running work when the main process asks the worker to stop. */
export class InterruptedError extends Error {
  constructor() {
    super('Test was interrupted.')
    this.name = 'InterruptedError'
  }
}

export class Slot {
  elapsed = 0
  constructor(public timeout: number) {}
}

interface Running {
  slot: Slot
  /** Wall time when this run (or its last resume) started. */
  resumedAt: number
  timer?: NodeJS.Timeout
  describe: () => string
  reject: (error: Error) => void
}

export class TimeoutManager {
  private readonly stack: Running[] = []
  private interrupted = false
  /** `vt test --debug`: nothing times out (interruptions still work). */
  ignoreTimeouts = false

  /**
   * Runs `body` within `slot`. Rejects with a TimeoutError (message from `describe`) when the slot's time runs
   * out, or an InterruptedError after `interrupt()`. A timeout of 0 means no limit.
   */
  async run<T>(slot: Slot, describe: () => string, body: () => T | Promise<T>): Promise<T> {
    if (this.interrupted) throw new InterruptedError()
    const outer = this.stack[this.stack.length - 1]
    if (outer) this.pause(outer)
    let running!: Running
    const deadline = new Promise<never>((_, reject) => {
      running = { slot, resumedAt: Date.now(), describe, reject }
    })
    deadline.catch(() => {})
    this.stack.push(running)
    this.schedule(running)
    try {
      return await Promise.race([Promise.resolve().then(body), deadline])
    } finally {
      this.pause(running)
      const index = this.stack.indexOf(running)
      if (index !== -1) this.stack.splice(index, 1)
      if (outer && this.stack[this.stack.length - 1] === outer) {
        outer.resumedAt = Date.now()
        this.schedule(outer)
      }
    }
  }

  private pause(running: Running): void {
    if (running.timer) {
      clearTimeout(running.timer)
      running.timer = undefined
      running.slot.elapsed += Date.now() - running.resumedAt
    }
  }

  private schedule(running: Running): void {
    if (running.timer) clearTimeout(running.timer)
    running.timer = undefined
    if (!running.slot.timeout || this.ignoreTimeouts) return
    const left = running.slot.timeout - running.slot.elapsed
    const fire = () => {
      running.timer = undefined
      running.slot.elapsed = running.slot.timeout
      running.reject(new TimeoutError(running.describe()))
    }
    if (left <= 0) fire()
    else running.timer = setTimeout(fire, left)
  }

  /** Changes a slot's timeout; reschedules it when it is the one counting. */
  updateTimeout(slot: Slot, timeout: number): void {
    const top = this.stack[this.stack.length - 1]
    if (top && top.slot === slot) this.pause(top)
    slot.timeout = timeout
    if (top && top.slot === slot) {
      top.resumedAt = Date.now()
      this.schedule(top)
    }
  }

  /** Fails every running body with InterruptedError; later runs fail immediately until `resetInterrupt()`. */
  interrupt(): void {
    this.interrupted = true
    for (const running of [...this.stack]) {
      this.pause(running)
      running.reject(new InterruptedError())
    }
  }

  get isInterrupted(): boolean {
    return this.interrupted
  }

  /** Teardown after an interruption must still run: it uses `runUninterruptible`. */
  async runUninterruptible<T>(slot: Slot, describe: () => string, body: () => T | Promise<T>): Promise<T> {
    const saved = this.interrupted
    this.interrupted = false
    try {
      return await this.run(slot, describe, body)
    } finally {
      this.interrupted = this.interrupted || saved
    }
  }
}
