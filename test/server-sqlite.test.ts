import { serverSuite } from './server-suite.ts';

serverSuite('sqlite', async () => ({}));
