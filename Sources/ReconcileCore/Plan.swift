/// What `apply` would do to one environment, decided by `Differ` from desired and observed state.
public struct EnvironmentPlan: Sendable, Equatable, Encodable {
    public enum Action: String, Sendable, Equatable, Encodable {
        /// The running container matches the file.
        case inSync = "in-sync"
        /// No container yet: create and start one.
        case create
        /// The container differs from the file: back it up and start a new one.
        case replace
        /// The container matches but is not running: start it.
        case start
        /// Something reconcile does not manage stands in the way; apply refuses.
        case conflict
    }

    public var file: String
    public var service: String
    public var environment: String
    public var container: String
    public var action: Action
    /// Field-level changes, in a fixed order (`old` nil for an addition, `new` nil for a removal).
    public var changes: [FieldChange] = []
    /// Why the environment is in conflict, one sentence each.
    public var conflicts: [String] = []
    /// Containers apply would remove: surplus backups and leftovers of an interrupted apply.
    public var prune: [PruneItem] = []
    /// What apply does to the environment's blue-green proxy, when anything.
    public var proxy: ProxyChange?
    /// Containers of this environment apply would stop (a backup still running after an
    /// interrupted blue-green deploy).
    public var stop: [PruneItem] = []
    /// Things that do not stop a diff but matter for apply (missing secrets, missing image).
    public var warnings: [String] = []
    public var approvalRequired: Bool = false
    /// The id of the active container, when there is one.
    public var currentID: String?
    /// Who holds the environment's lock when the plan was made (an apply in progress), if anyone.
    public var lockedBy: String?
    /// The engine the file names (`engine:`); nil for the one the docker CLI would use.
    public var engine: String?
    /// A Swarm service's tasks as the engine shows them now (`2/2 running (web1: running, …)`).
    public var tasks: String?

    public init(file: String, service: String, environment: String, container: String, action: Action) {
        self.file = file
        self.service = service
        self.environment = environment
        self.container = container
        self.action = action
    }

    /// True when apply would change something on the engine.
    public var hasChanges: Bool { action != .inSync || !prune.isEmpty || proxy != nil || !stop.isEmpty }
}

/// A change to the environment's proxy, and why.
public struct ProxyChange: Sendable, Equatable, Encodable {
    public enum Action: String, Sendable, Equatable, Encodable {
        /// There is none: create it (and the network).
        case create
        /// Its settings or image changed: replace it (the port answers nothing for about a second).
        case recreate
        /// It exists but does not run: start it.
        case start
        /// It runs but does not send requests to the live version only: point it there.
        case route
        /// The environment no longer uses blue-green: remove it (the port moves to the container).
        case remove
    }

    public var action: Action
    public var reason: String

    public init(action: Action, reason: String) {
        self.action = action
        self.reason = reason
    }
}

/// One field that differs between the running container and the file.
public struct FieldChange: Sendable, Equatable, Encodable {
    public var field: String
    public var old: String?
    public var new: String?

    public init(field: String, old: String?, new: String?) {
        self.field = field
        self.old = old
        self.new = new
    }
}

/// A container that apply would remove, and why.
public struct PruneItem: Sendable, Equatable, Encodable {
    public var name: String
    public var id: String
    public var reason: String
    /// True for a leftover of an interrupted apply (removed before anything else), false for a
    /// surplus backup (removed once the new version serves).
    public var leftover: Bool

    public init(name: String, id: String, reason: String, leftover: Bool = false) {
        self.name = name
        self.id = id
        self.reason = reason
        self.leftover = leftover
    }
}
