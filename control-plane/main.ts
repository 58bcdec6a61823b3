// `prefix-router control-plane ...`: validates the configuration, serves until SIGINT/SIGTERM.
import { buildControlPlane } from './app.js';
import { ConfigError, CONTROL_PLANE_USAGE, loadConfig, wantsHelp } from './config.js';
import { createLogger } from './log.js';
import { serve } from './server.js';

export async function runControlPlaneCli(args: string[]): Promise<number> {
  if (wantsHelp(args)) {
    console.log(CONTROL_PLANE_USAGE);
    return 0;
  }
  let loaded;
  try {
    loaded = loadConfig(args);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`prefix-router control-plane: ${e.message}\nrun 'prefix-router control-plane --help' for the options`);
      return 2;
    }
    throw e;
  }
  const { config, token, tokenSource } = loaded;
  const log = createLogger(config.logLevel);
  let running;
  try {
    const app = await buildControlPlane(config, { logger: log, token });
    running = await serve(app, config);
  } catch (e) {
    log.error('control plane failed to start', { error: e as Error });
    return 1;
  }
  log.info('control plane listening', { url: running.url, apiToken: tokenSource ?? 'none' });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('shutting down', { signal });
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      running.close().then(resolve, resolve);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  return 0;
}
