"""The closed-form NEON explainer of member-point networks."""

from ...core import Explainer, labels_and_explained
from ...equations import centroid_scores, masked_min, softmin_shares
from ...validation import tie_threshold
from .equations import factored_pair_relevance, group_logmeanexp, group_shares

__all__ = ['MemberExplainer']


class MemberExplainer(Explainer):
    """NEON for member-point networks (Gaussian kernel k-means, labelled partitions), in closed form.

    With member scores s (N, M) and ``S_k = LME^{+gamma}_{j in C_k} s_j``, the four layers collapse to
    ``f_c = min_{k != c} S_c - S_k``. The relevance is the one the Zennit rules give layer by layer:
    ``R_k = softmin_k(beta (S_c - S_k)) f_c`` for each competitor, then the pools' shares, which do not
    depend on the other side of a pair: ``q_i = softmax_{i in C_c}(kappa s_i)`` and
    ``p_j = softmax_{j in C_k}(kappa s_j)`` (kappa = the model's ``relevance_gamma``, by default gamma), so
    ``R_ij = q_i p_j R_k(j)``; finally the midpoint rule on every pair margin ``h_ij = s_i - s_j``, except for
    exact ties (``|h| < epsilon``), which carry no relevance (:func:`.tie_reciprocal`).
    Work O(N |C_c| M) (every member of the explained cluster against every member), memory |C_c| x M per row
    (``row_elements``, which :func:`explain` uses to size its chunks).

    Parameters
    ----------
    model : NeuralizedMembers
    cluster : int or None
        Explain this cluster for every row, or (None) each row's assigned cluster.
    beta : float
        Soft-min stiffness of the redistribution to competitors.
    epsilon : float or None
        Tie threshold of the pair margins; None for sqrt(machine epsilon of the dtype at run time) x the
        members' mean squared norm (:meth:`.MemberMargin.tie_threshold`).

    Notes
    -----
    ``forward(x)`` returns ``label`` (int64, -1 for rows with NaN or infinity), ``logits`` (N, K) and
    ``relevance`` (N, D) with ``relevance.sum(1) == logits[c]`` for the explained cluster c, as
    :class:`.CentroidExplainer`, short of the share of tied pairs (none on continuous data).
    """
    def __init__(self, model, cluster, beta, epsilon=None):
        margin, pool = model.margin, model.own_pool
        super().__init__(margin.origin)
        self.register_buffer('members', margin.members.clone())
        self.register_buffer('member_group', margin.member_group.clone())
        self.register_buffer('groups', pool.groups.clone())
        self.register_buffer('group_valid', pool.valid.clone())
        self.register_buffer('counts', pool.counts.clone())
        self.register_buffer('others', model.pool.valid.clone())
        self.scale = margin.scale
        self.gamma = model.gamma
        self.relevance_gamma = model.relevance_gamma
        self.cluster = cluster
        self.beta = beta
        self.epsilon = epsilon
        self.row_elements = self.groups.shape[1] * self.members.shape[0]

    def forward(self, x):
        x = x if self.origin is None else x - self.origin
        n_rows, n_clusters = x.shape[0], self.groups.shape[0]
        scores = centroid_scores(x, self.members)
        pooled = group_logmeanexp(scores, self.groups, self.group_valid, self.gamma)
        margins = pooled.unsqueeze(2) - pooled.unsqueeze(1)
        logits = masked_min(margins, self.others)
        label, explained = labels_and_explained(logits, self.cluster)
        index = explained.reshape(n_rows, 1, 1).expand(n_rows, 1, n_clusters)
        own_margins = margins.gather(1, index).squeeze(1)
        evidence = logits.gather(1, explained.unsqueeze(1))
        competitor = softmin_shares(own_margins, self.others[explained], self.beta) * evidence

        if self.relevance_gamma != self.gamma:
            pooled = group_logmeanexp(scores, self.groups, self.group_valid, self.relevance_gamma)
        shares = group_shares(scores, pooled, self.member_group, self.counts, self.relevance_gamma)
        own = self.groups[explained]
        own_share = shares.gather(1, own).masked_fill(~self.group_valid[explained], 0.0)
        rival_share = shares * competitor.index_select(1, self.member_group)
        pair_margins = scores.gather(1, own).unsqueeze(2) - scores.unsqueeze(1)
        threshold = tie_threshold(x.dtype, self.scale) if self.epsilon is None else self.epsilon
        relevance = factored_pair_relevance(x, self.members, own, own_share, rival_share, pair_margins, threshold)
        return label, logits, relevance
