/**
 * What an admin is told when the broker makes accounts that nothing authorizes (`authorization: none`): the server
 * authenticates each lease but lets it reach every database, so isolation between users' databases there is not
 * something the hub can give.
 */
export const UNISOLATED_MONGODB_WARNING =
  'credentials.mongodb.authorization is none: nothing enforces roles, so any lease can read and write every database on the MongoDB server, ' +
  'other users\' included. Use a MongoDB server with authorization (authorization: roles), or put LabHub\'s mongo-gate in front of FerretDB (authorization: gate).';
