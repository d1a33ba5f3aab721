using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Baton.Gateway.Failover;

/// <summary>Who a failed forwarding attempt is blamed on.</summary>
internal enum FailureParty
{
    /// <summary>The backend: it refused or reset the connection, or did not answer in time a request it had whole.</summary>
    Destination,

    /// <summary>The client: its body stalled, was too large or malformed, or it went away.</summary>
    Client,

    /// <summary>The gateway's own code (a store it could not write, a transform that threw).</summary>
    Gateway,

    /// <summary>Nobody: the backend answered, then stopped reading a body it did not want. The answer stands.</summary>
    None,
}

/// <summary>
/// A failed attempt, judged: who is to blame, a short reason (a metric tag), and for a client's failure the
/// status it is answered with. Only <see cref="FailureParty.Destination"/> failures mark a destination down
/// or move a session; a client cannot make the gateway treat a healthy backend as dead.
/// </summary>
internal readonly record struct AttemptFailure(FailureParty Party, string Reason, int ClientStatus = 0)
{
    public static AttemptFailure Classify(HttpContext context, IForwarderErrorFeature error)
    {
        if (context.RequestAborted.IsCancellationRequested)
        {
            return Client("aborted", StatusCodes.Status400BadRequest);
        }

        if (context.Features.Get<AttemptSignals>()?.GatewayFault is { } fault)
        {
            return new AttemptFailure(FailureParty.Gateway, fault);
        }

        return error.Error switch
        {
            ForwarderError.RequestBodyClient or ForwarderError.UpgradeRequestClient => FromClientBody(error.Exception),
            ForwarderError.ResponseBodyClient or ForwarderError.UpgradeResponseClient => Client("response_not_read", StatusCodes.Status400BadRequest),
            ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.ResponseBodyCanceled
                or ForwarderError.UpgradeRequestCanceled or ForwarderError.UpgradeResponseCanceled => Client("canceled", StatusCodes.Status400BadRequest),
            ForwarderError.UpgradeActivityTimeout => Client("upgrade_idle", StatusCodes.Status408RequestTimeout),

            // A timeout while the body was still being read from the client is the client's stall, not the backend's.
            ForwarderError.RequestTimedOut when context.Features.Get<ClientBodyStream>() is { WaitingOnClient: true } => BodyStalled,

            // The backend answered and then stopped reading the body (it refused it, e.g. as too large): no failure.
            ForwarderError.RequestBodyDestination when context.Response.HasStarted => new AttemptFailure(FailureParty.None, "body_not_taken"),

            // The request transforms threw before anything was sent: the gateway's own code.
            ForwarderError.RequestCreation => new AttemptFailure(FailureParty.Gateway, "request_creation"),
            _ => new AttemptFailure(FailureParty.Destination, error.Error.ToString()),
        };
    }

    /// <summary>The client stopped sending its body.</summary>
    public static AttemptFailure BodyStalled => Client("body_stalled", StatusCodes.Status408RequestTimeout);

    /// <summary>The client broke off in the middle of its body.</summary>
    public static AttemptFailure BodyAborted => Client("body_aborted", StatusCodes.Status400BadRequest);

    /// <summary>The server could not read the client's body (Kestrel's verdict), or, without one, the client broke off.</summary>
    public static AttemptFailure ClientBody(BadHttpRequestException? bad)
        => bad?.StatusCode switch
        {
            StatusCodes.Status413PayloadTooLarge => Client("body_too_large", StatusCodes.Status413PayloadTooLarge),
            StatusCodes.Status408RequestTimeout => Client("body_too_slow", StatusCodes.Status408RequestTimeout),
            { } status => Client("body_malformed", status),
            null => BodyAborted,
        };

    private static AttemptFailure Client(string reason, int status) => new(FailureParty.Client, reason, status);

    // Kestrel's verdict on the body when it gave one; else a read that waited on the client too long (its
    // idle timeout, or the attempt timeout cancelling it): a stall; else the client broke off.
    private static AttemptFailure FromClientBody(Exception? exception)
        => Find<BadHttpRequestException>(exception) is { } bad ? ClientBody(bad)
            : Find<RequestBodyStalledException>(exception) is not null || Find<OperationCanceledException>(exception) is not null ? BodyStalled
            : BodyAborted;

    private static T? Find<T>(Exception? exception)
        where T : Exception
        => exception as T ?? (exception as AggregateException)?.InnerExceptions.OfType<T>().FirstOrDefault();
}
