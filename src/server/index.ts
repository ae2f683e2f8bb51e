/** The HTTP server: createServer(engine, opts) → listen / shutdown. Node only (node:http). */
export { createServer, defaultParallel, type GemmaServer, type ListenAddress, type ServedEngine, type ServerOptions } from './server.js';
export { HttpError } from './errors.js';
export { RequestQueue, QueueFullError, QueueClosedError } from './queue.js';
export { parseChatCompletion, parseSimpleChat, parseAnalyzeImage, penaltyToRepetition, NO_VISION, NO_AUDIO, type ModelCapabilities } from './request.js';
