using Baton.Protocol;

namespace Baton.Backend;

/// <summary>The request's session identity, as the app may change it (see <c>BatonSessionHttpContextExtensions</c>).</summary>
internal sealed class BatonSessionControl(bool checkpointed)
{
    /// <summary>What the app asked for; null when nothing.</summary>
    public SessionActionKind? Requested { get; private set; }

    /// <summary>
    /// Asks for the action; false when the session is not one a gateway keeps (a request that did not come
    /// through a gateway), or the response has already started.
    /// </summary>
    public bool Request(SessionActionKind action, bool responseStarted)
    {
        if (!checkpointed || responseStarted)
        {
            return false;
        }

        // Ending wins over rotating: a request that does both ends the session.
        Requested = Requested == SessionActionKind.End ? SessionActionKind.End : action;
        return true;
    }
}
