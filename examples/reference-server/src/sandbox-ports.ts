/**
 * Ports for the embedded systems that sandbox mode starts (OpenEMR emulator, DICOM store, FHIR server): a random port
 * in 20000–31999, below the kernel's ephemeral range (32768+, where outgoing connections take their local ports), and
 * another one when that port is taken (EADDRINUSE).
 */

/** The range the embedded systems' ports come from. */
export const SANDBOX_PORT_RANGE = { min: 20_000, max: 31_999 } as const;

/**
 * Starts something on a random port of {@link SANDBOX_PORT_RANGE}, retrying with another port on EADDRINUSE.
 * @param start - starts the system on the given port on 127.0.0.1; rejects with the listen error
 * @returns what `start` resolved to
 * @throws the first error that is not EADDRINUSE, or the last EADDRINUSE after 50 tries
 */
export async function onSandboxPort<T>(start: (port: number) => Promise<T>): Promise<T> {
  const { min, max } = SANDBOX_PORT_RANGE;
  for (let attempt = 1; ; attempt++) {
    const port = min + Math.floor(Math.random() * (max - min + 1));
    try {
      return await start(port);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 50) throw error;
    }
  }
}
