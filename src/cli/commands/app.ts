import type { Command } from 'commander';
import { startAppServer } from '../../app/server.ts';
import { nonNegativeInteger } from '../../runs/options.ts';
import { parser } from '../parse.ts';
import { addDataOptions, locateOptions, log, type DataFlags } from '../shared.ts';

interface AppFlags extends DataFlags {
  model?: string;
  port: number;
  host: string;
}

/** `fmnist app`: the web app (train in the page, try the models on drawings and photos, look at runs). */
export function addAppCommand(program: Command): void {
  addDataOptions(
    program
      .command('app')
      .description('serve the web app (npm run build:web builds it): train in the browser, classify drawings and photos, look at a run')
      .option('--model <dir>', 'run folder (fmnist train, pipeline or a search trial) whose models the page loads')
      .option('--port <n>', 'port to listen on (0: any free port)', parser(nonNegativeInteger), 8000)
      .option('--host <address>', 'address to listen on (the default serves this machine only)', '127.0.0.1'),
  ).action(async (flags: AppFlags) => {
    const server = await startAppServer({
      modelDir: flags.model,
      port: flags.port,
      host: flags.host,
      data: locateOptions(flags),
      allowModifiedData: flags.allowModifiedData,
      log,
    });
    const models = server.info.models.map((model) => model.name).join(', ');
    if (models !== '') log(`models: ${models}`);
    console.log(`app: ${server.url}`);
    log('Ctrl-C stops it');
    // Serve until Ctrl-C or SIGTERM, then close the server and end normally.
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await server.close();
  });
}
