import { serverSuite } from './server-suite.ts';
import { createTempDatabase } from './helpers/postgres.ts';

serverSuite('postgres', async () => createTempDatabase());
