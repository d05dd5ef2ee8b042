import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChannelRegistry, type Subscriber } from '../../src/channels/registry.js';

interface FakeConnection extends Subscriber {
  readonly name: string;
}

function connection(name: string): FakeConnection {
  return { name, channels: new Set() };
}

function members(registry: ChannelRegistry<FakeConnection>, channel: string): string[] {
  return [...(registry.subscribers(channel) ?? [])].map((subscriber) => subscriber.name).sort();
}

void describe('ChannelRegistry.subscribe', () => {
  void test('reports the first subscriber of a channel', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    assert.equal(registry.subscribe(connection('a'), 'chat'), true);
  });

  void test('does not report later subscribers as first', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    registry.subscribe(connection('a'), 'chat');
    assert.equal(registry.subscribe(connection('b'), 'chat'), false);
  });

  void test('lists every subscriber of the channel', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    registry.subscribe(connection('a'), 'chat');
    registry.subscribe(connection('b'), 'chat');
    assert.deepEqual(members(registry, 'chat'), ['a', 'b']);
  });

  void test("adds the channel to the subscriber's own set", () => {
    const registry = new ChannelRegistry<FakeConnection>();
    const alice = connection('a');
    registry.subscribe(alice, 'chat');
    registry.subscribe(alice, 'news');
    assert.deepEqual([...alice.channels].sort(), ['chat', 'news']);
  });

  void test('subscribing twice is a no-op that is not reported as first', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    const alice = connection('a');
    registry.subscribe(alice, 'chat');
    assert.equal(registry.subscribe(alice, 'chat'), false);
    assert.equal(registry.subscribers('chat')?.size, 1);
    assert.equal(alice.channels.size, 1);
  });

  void test('a subscription made twice is undone by one unsubscribe', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    const alice = connection('a');
    registry.subscribe(alice, 'chat');
    registry.subscribe(alice, 'chat');
    assert.equal(registry.unsubscribe(alice, 'chat'), true);
    assert.equal(registry.subscribers('chat'), undefined);
  });

  void test('channels are kept apart', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    registry.subscribe(connection('a'), 'chat');
    registry.subscribe(connection('b'), 'news');
    assert.deepEqual(members(registry, 'chat'), ['a']);
    assert.deepEqual(members(registry, 'news'), ['b']);
  });
});

void describe('ChannelRegistry.unsubscribe', () => {
  void test('reports the channel empty when its last subscriber leaves', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    const alice = connection('a');
    registry.subscribe(alice, 'chat');
    assert.equal(registry.unsubscribe(alice, 'chat'), true);
  });

  void test('forgets a channel once it is empty', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    const alice = connection('a');
    registry.subscribe(alice, 'chat');
    registry.unsubscribe(alice, 'chat');
    assert.equal(registry.subscribers('chat'), undefined);
    assert.equal(registry.channelCount, 0);
  });

  void test('does not report the channel empty while others remain', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    const alice = connection('a');
    registry.subscribe(alice, 'chat');
    registry.subscribe(connection('b'), 'chat');
    assert.equal(registry.unsubscribe(alice, 'chat'), false);
    assert.deepEqual(members(registry, 'chat'), ['b']);
  });

  void test("removes the channel from the subscriber's own set", () => {
    const registry = new ChannelRegistry<FakeConnection>();
    const alice = connection('a');
    registry.subscribe(alice, 'chat');
    registry.subscribe(alice, 'news');
    registry.unsubscribe(alice, 'chat');
    assert.deepEqual([...alice.channels], ['news']);
  });

  void test('unsubscribing from a channel never joined reports nothing and creates no channel', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    assert.equal(registry.unsubscribe(connection('a'), 'chat'), false);
    assert.equal(registry.subscribers('chat'), undefined);
    assert.equal(registry.channelCount, 0);
  });

  void test("unsubscribing a non-member leaves the channel's members alone", () => {
    const registry = new ChannelRegistry<FakeConnection>();
    registry.subscribe(connection('b'), 'chat');
    assert.equal(registry.unsubscribe(connection('a'), 'chat'), false);
    assert.deepEqual(members(registry, 'chat'), ['b']);
  });

  void test('a second unsubscribe does not report the channel empty again', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    const alice = connection('a');
    registry.subscribe(alice, 'chat');
    registry.unsubscribe(alice, 'chat');
    assert.equal(registry.unsubscribe(alice, 'chat'), false);
  });

  void test('subscribing again after the channel emptied is reported as first', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    const alice = connection('a');
    registry.subscribe(alice, 'chat');
    registry.unsubscribe(alice, 'chat');
    assert.equal(registry.subscribe(alice, 'chat'), true);
  });
});

void describe('ChannelRegistry.channelCount', () => {
  void test('counts the channels that have at least one subscriber', () => {
    const registry = new ChannelRegistry<FakeConnection>();
    const alice = connection('a');
    const bob = connection('b');
    registry.subscribe(alice, 'chat');
    registry.subscribe(bob, 'chat');
    registry.subscribe(bob, 'news');
    assert.equal(registry.channelCount, 2);
    registry.unsubscribe(bob, 'news');
    assert.equal(registry.channelCount, 1);
  });
});
