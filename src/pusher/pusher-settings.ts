/** The Pusher endpoint's settings from the resolved options; null when it is off (pusher-options.ts). */
export { pusherApp as pusherSettings } from './pusher-options.js';
