import Foundation

/// The kinds of object a handle can name.
enum HandleKind: String, Sendable {
    case context, factor, curvature, optimizer
}

/// An object behind a handle. Its lock serialises calls on the object, so two threads using
/// one handle wait for each other instead of racing on its kernels and scratch buffers.
class HandledObject: @unchecked Sendable {
    let kind: HandleKind
    let lock = NSLock()

    init(kind: HandleKind) { self.kind = kind }

    /// Runs `body` holding this object's lock.
    func serialized<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

/// Every live handle. A handle is `generation << 32 | (slot + 1)`: a released handle's slot
/// gets a new generation, so the stale value (and any forged one) fails the lookup instead
/// of reaching freed memory. A slot whose generation would wrap is retired, so no handle
/// value is ever handed out twice.
final class Registry: @unchecked Sendable {
    static let shared = Registry()

    private struct Slot {
        var generation: UInt32
        var object: HandledObject?
    }

    private let lock = NSLock()
    private var slots: [Slot] = []
    private var freeSlots: [Int] = []

    /// A new handle for `object`.
    func insert(_ object: HandledObject) throws -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        let index: Int
        if let reused = freeSlots.popLast() {
            index = reused
        } else {
            try check(slots.count < Int(UInt32.max - 1), "handle", "too many live handles (\(slots.count))")
            slots.append(Slot(generation: 1, object: nil))
            index = slots.count - 1
        }
        slots[index].object = object
        return UInt64(slots[index].generation) << 32 | UInt64(index + 1)
    }

    /// The live object of `kind` behind `handle`; `name` is the argument named in errors.
    func lookup<T: HandledObject>(_ handle: UInt64, _ type: T.Type, _ kind: HandleKind, _ name: String) throws -> T {
        let object = try locate(handle, name)
        guard object.kind == kind, let typed = object as? T else {
            throw BridgeError.invalidHandle(name: name, reason: "is a \(object.kind.rawValue), not a \(kind.rawValue)")
        }
        return typed
    }

    /// Removes `handle`; its object lives on while other objects reference it.
    func release(_ handle: UInt64) throws {
        lock.lock()
        defer { lock.unlock() }
        let index = try slotIndex(handle, "handle")
        slots[index].object = nil
        if slots[index].generation == UInt32.max { return } // retired
        slots[index].generation += 1
        freeSlots.append(index)
    }

    private func locate(_ handle: UInt64, _ name: String) throws -> HandledObject {
        lock.lock()
        defer { lock.unlock() }
        let index = try slotIndex(handle, name)
        guard let object = slots[index].object else {
            throw BridgeError.invalidHandle(name: name, reason: "\(handle) was released")
        }
        return object
    }

    /// The slot of a live `handle` (the registry lock held).
    private func slotIndex(_ handle: UInt64, _ name: String) throws -> Int {
        guard handle != 0 else { throw BridgeError.invalidHandle(name: name, reason: "is 0 (no object)") }
        let slot = Int(handle & 0xFFFF_FFFF) - 1
        let generation = UInt32(handle >> 32)
        guard slot >= 0, slot < slots.count else {
            throw BridgeError.invalidHandle(name: name, reason: "\(handle) is not a handle this library issued")
        }
        guard slots[slot].generation == generation, slots[slot].object != nil else {
            throw BridgeError.invalidHandle(
                name: name,
                reason: generation < slots[slot].generation
                    ? "\(handle) was released" : "\(handle) is not a handle this library issued")
        }
        return slot
    }
}
