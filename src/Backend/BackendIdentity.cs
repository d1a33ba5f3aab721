using Baton.Protocol;
using Microsoft.Extensions.Options;

namespace Baton.Backend;

/// <summary>
/// This process as the gateway knows it: the keys derived from the shared secret, and an incarnation id
/// that is new every time the process starts, so the gateway can tell a restarted backend (with empty
/// memory) from the one it checkpointed, and bind restores to exactly one process.
/// </summary>
internal sealed class BackendIdentity(IOptions<BatonBackendOptions> options)
{
    public ProtocolKeys Keys { get; } = new(options.Value.Secret!);

    public string Incarnation { get; } = Ids.New();
}
