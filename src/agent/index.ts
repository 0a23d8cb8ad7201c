/** The service side: broker client, enrollment (renewal, watch and the library come next). */
export * from './broker-api.js';
export * from './broker-client.js';
export * from './enroll.js';
